#!/usr/bin/env node
// The `flotilla-agent` command: runs the agent's esbuild bundle (dist/flotilla-agent.mjs) on
// plain node, the same files the agent image ships, not its TypeScript through tsx (which
// holds about three times the memory). The bundle is built here when it is missing or older
// than any source it was built from, so a checkout never runs stale code. Where esbuild is not
// installed (an install without devDependencies), the agent runs from its sources through tsx.
import { runBundle } from '../../scripts/esbuild-bundle.mjs';

await runBundle({
  command: 'flotilla-agent',
  entry: new URL('../dist/flotilla-agent.mjs', import.meta.url),
  source: new URL('../src/cli/main.ts', import.meta.url),
  build: async () => (await import('../build.mjs')).buildAgent(),
  what: 'the agent bundle (agent/dist)',
});
