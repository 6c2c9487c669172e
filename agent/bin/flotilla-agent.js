#!/usr/bin/env node
// The `flotilla-agent` command: runs the agent's esbuild bundle (dist/flotilla-agent.mjs) on
// plain node, the same files the agent image ships, not its TypeScript through tsx (which
// holds about three times the memory). The bundle is built here when it is missing or older
// than any source it was built from, so a checkout never runs stale code. Where esbuild is not
// installed (an install without devDependencies), the agent runs from its sources through tsx.
import { existsSync, readFileSync, statSync } from 'node:fs';

const outDir = new URL('../dist/', import.meta.url);
const entry = new URL('flotilla-agent.mjs', outDir);

/** Whether the bundle exists and no source it was built from changed since. */
function fresh() {
  let built;
  try {
    built = statSync(entry).mtimeMs;
  } catch {
    return false;
  }
  // Without sources (a shipped bundle) there is nothing to compare with.
  if (!existsSync(new URL('../src/cli/main.ts', import.meta.url))) return true;
  try {
    const inputs = JSON.parse(readFileSync(new URL('inputs.json', outDir), 'utf8'));
    return inputs.every((p) => statSync(p).mtimeMs <= built);
  } catch {
    return false;
  }
}

if (fresh()) {
  await import(entry.href);
} else {
  let buildAgent;
  try {
    ({ buildAgent } = await import('../build.mjs'));
    await import('esbuild');
  } catch {
    buildAgent = undefined;
  }
  if (buildAgent) {
    try {
      await buildAgent();
    } catch {
      // esbuild has printed what is wrong, with file and line.
      process.stderr.write(
        'flotilla-agent: the agent bundle (agent/dist) could not be built from its sources\n',
      );
      process.exit(1);
    }
    await import(entry.href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import('../src/cli/main.ts');
  }
}
