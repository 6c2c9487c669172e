#!/usr/bin/env node
// `npm test`: build the CLI bundle, typecheck and lint the whole tree, run every package's tests through turbo,
// then close with one machine-readable line: `N passed, N failed`.
import { spawn } from 'node:child_process';

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', FORCE_COLOR: '0' };

function run(cmd, args, { capture = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (stream) => (chunk) => {
      stream.write(chunk);
      if (capture) out += chunk;
    };
    child.stdout.on('data', onData(process.stdout));
    child.stderr.on('data', onData(process.stderr));
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
let failedSteps = 0;
for (const [name, cmd, args] of [
  // The `flotilla` bin runs this bundle (and would build it on first use): build it once here,
  // before tests start using it from several processes at a time.
  [
    'build the flotilla CLI bundle',
    process.execPath,
    [new URL('../hub/build.mjs', import.meta.url).pathname],
  ],
  ['typecheck', bin('tsc'), ['-b']],
  ['lint', bin('biome'), ['check', '.']],
]) {
  const { code } = await run(cmd, args);
  console.log(`${name}: ${code === 0 ? 'ok' : 'FAILED'}`);
  if (code !== 0) failedSteps++;
}

const { code, out } = await run(
  bin('turbo'),
  ['run', 'test', '--concurrency=2', '--continue', '--log-order=grouped', ...process.argv.slice(2)],
  {
    capture: true,
  },
);
let passed = 0;
let failed = failedSteps;
for (const m of out.matchAll(/ℹ pass (\d+)/g)) passed += Number(m[1]);
for (const m of out.matchAll(/ℹ fail (\d+)/g)) failed += Number(m[1]);
// A test cancelled because its suite's setup failed did not pass either.
for (const m of out.matchAll(/ℹ cancelled (\d+)/g)) failed += Number(m[1]);
if (code !== 0 && failed === 0) failed = 1;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 && code === 0 ? 0 : 1);
