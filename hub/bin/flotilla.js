#!/usr/bin/env node
// The `flotilla` command: runs the CLI's esbuild bundle (dist/bin/flotilla.mjs) on plain node,
// so a client command starts in tens of milliseconds instead of compiling the hub through tsx.
// The bundle is built here when it is missing or older than any source it was built from, so
// a checkout never runs stale code. Where esbuild is not installed (a production install
// without devDependencies), the CLI runs from its TypeScript sources through tsx instead.
import { runBundle } from '../../scripts/esbuild-bundle.mjs';

await runBundle({
  command: 'flotilla',
  entry: new URL('../dist/bin/flotilla.mjs', import.meta.url),
  source: new URL('../src/cli/main.ts', import.meta.url),
  build: async () => (await import('../build.mjs')).buildCli(),
  what: 'the CLI bundle (hub/dist/bin)',
});
