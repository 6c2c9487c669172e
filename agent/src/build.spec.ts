import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const agentDir = new URL('..', import.meta.url).pathname;

test('the shipped agent is one esbuild bundle that runs on plain node', async () => {
  await run(process.execPath, ['build.mjs'], { cwd: agentDir });
  const bundle = `${agentDir}dist/flotilla-agent.mjs`;
  assert.ok(existsSync(bundle));
  const help = await run(process.execPath, [bundle, '--help']);
  assert.match(help.stdout, /flotilla-agent run/);
  // A real code path: a missing identity is a clear error naming the state dir, not a crash.
  const refused = await run(process.execPath, [
    bundle,
    'run',
    '--state-dir',
    '/nonexistent-flotilla',
    '--kubeconfig',
    '/dev/null',
  ]).then(
    () => assert.fail('run without an identity must fail'),
    (err: { code: number; stderr: string }) => err,
  );
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /nonexistent-flotilla/);
});

test('the flotilla-agent bin runs the bundle, building it first when it is missing', async () => {
  const bundle = `${agentDir}dist/flotilla-agent.mjs`;
  await run(process.execPath, ['build.mjs'], { cwd: agentDir });
  rmSync(bundle, { force: true });
  const help = await run(process.execPath, [`${agentDir}bin/flotilla-agent.js`, '--help']);
  assert.match(help.stdout, /flotilla-agent run/);
  assert.ok(existsSync(bundle), 'the bin built dist/flotilla-agent.mjs before running it');
  // Its chunks are there too: `run` loads the agent's (execute), and `run --metrics-addr` one
  // more from there (the health endpoints).
  const execute = /execute-[A-Z0-9]+\.mjs/.exec(readFileSync(bundle, 'utf8'))?.[0];
  assert.ok(execute, 'the entry imports an execute chunk');
  assert.ok(existsSync(`${agentDir}dist/${execute}`), `the execute chunk it imports is in dist: ${execute}`);
  const chunk = /health-[A-Z0-9]+\.mjs/.exec(readFileSync(`${agentDir}dist/${execute}`, 'utf8'))?.[0];
  assert.ok(chunk, 'the execute chunk imports a health chunk');
  assert.ok(existsSync(`${agentDir}dist/${chunk}`), `the health chunk it imports is in dist: ${chunk}`);
});

test('the flotilla-agent bin rebuilds a bundle that is older than a source it was built from, before running it', async () => {
  const bundle = `${agentDir}dist/flotilla-agent.mjs`;
  await run(process.execPath, ['build.mjs'], { cwd: agentDir });
  // As if every source had been edited after the build: the bundle is from 1970.
  utimesSync(bundle, 0, 0);
  const help = await run(process.execPath, [`${agentDir}bin/flotilla-agent.js`, '--help']);
  assert.match(help.stdout, /flotilla-agent run/);
  assert.ok(statSync(bundle).mtimeMs > 0, 'the bundle was built again');
});
