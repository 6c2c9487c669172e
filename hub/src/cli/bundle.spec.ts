import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync, utimesSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '@flotilla/e2e/harness';

const run = promisify(execFile);
const HUB = fileURLToPath(new URL('../../', import.meta.url));
const BIN = `${HUB}bin/flotilla.js`;
/** What the bin runs the bundle with (the freshness check), shared with the agent's bin. */
const LAUNCHER = new URL('../../../scripts/esbuild-bundle.mjs', import.meta.url).href;

/** Logs every module URL the child process resolves, from node's own loader hooks. */
const TRACE_IMPORTS =
  'data:text/javascript,import{register}from"node:module";register("data:text/javascript,' +
  'export async function resolve(s,c,n){const r=await n(s,c);console.error(\\"LOADED \\"+r.url);return r}")';

/** The modules `flotilla ARGS` loads, and its exit code. */
async function loadedBy(args: string[]): Promise<{ code: number; modules: string[] }> {
  const result = await run(process.execPath, ['--import', TRACE_IMPORTS, BIN, ...args]).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  );
  const modules = [...result.stderr.matchAll(/^LOADED (\S+)$/gm)].map((m) => m[1]!);
  return { code: result.code, modules };
}

test('the flotilla bin runs the esbuild bundle, and a client command loads no TypeScript and no third-party package', async () => {
  await run(process.execPath, ['build.mjs'], { cwd: HUB });
  const bundle = new URL('../../dist/bin/', import.meta.url).href;
  const port = await freePort();
  for (const args of [['--help'], ['cluster', 'list', '--hub', `http://127.0.0.1:${port}`]]) {
    const { code, modules } = await loadedBy(args);
    assert.equal(code, args[0] === '--help' ? 0 : 1, `flotilla ${args.join(' ')}`);
    assert.ok(
      modules.some((m) => m.startsWith(bundle)),
      `flotilla ${args.join(' ')} ran the bundle: ${modules.join(' ')}`,
    );
    const foreign = modules.filter(
      (m) =>
        !m.startsWith('node:') &&
        !m.startsWith(bundle) &&
        m !== new URL(`file://${BIN}`).href &&
        m !== LAUNCHER,
    );
    assert.deepEqual(foreign, [], `flotilla ${args.join(' ')} loads only node builtins and the bundle`);
  }
});

test('hub commands load the hub from its own chunk of the bundle, when they run', async () => {
  const { code, modules } = await loadedBy(['hub', 'start']);
  assert.equal(code, 2, 'hub start without --nats is a usage error');
  assert.ok(
    modules.some((m) => /\/dist\/bin\/hub-commands-[A-Z0-9]+\.mjs$/.test(m)),
    `the hub chunk is loaded: ${modules.join(' ')}`,
  );
  assert.ok(!modules.some((m) => m.endsWith('.ts')), 'no TypeScript source is loaded');
});

test('the bin rebuilds a bundle that is older than a source it was built from, before running it', async () => {
  await run(process.execPath, ['build.mjs'], { cwd: HUB });
  const entry = `${HUB}dist/bin/flotilla.mjs`;
  // As if every source had been edited after the build: the bundle is from 1970.
  utimesSync(entry, 0, 0);
  const help = await run(process.execPath, [BIN, '--help']);
  assert.match(help.stdout, /^flotilla — multi-cluster GitOps hub/);
  assert.ok(statSync(entry).mtimeMs > Date.now() - 600_000, 'the bundle was built again');
});
