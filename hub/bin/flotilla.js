#!/usr/bin/env node
// The `flotilla` command: runs the CLI's esbuild bundle (dist/bin/flotilla.mjs) on plain node,
// so a client command starts in tens of milliseconds instead of compiling the hub through tsx.
// The bundle is built here when it is missing or older than any source it was built from, so
// a checkout never runs stale code. Where esbuild is not installed (a production install
// without devDependencies), the CLI runs from its TypeScript sources through tsx instead.
import { existsSync, readFileSync, statSync } from 'node:fs';

const outDir = new URL('../dist/bin/', import.meta.url);
const entry = new URL('flotilla.mjs', outDir);

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
  let buildCli;
  try {
    ({ buildCli } = await import('../build.mjs'));
    await import('esbuild');
  } catch {
    buildCli = undefined;
  }
  if (buildCli) {
    try {
      await buildCli();
    } catch {
      // esbuild has printed what is wrong, with file and line.
      process.stderr.write('flotilla: the CLI bundle (hub/dist/bin) could not be built from its sources\n');
      process.exit(1);
    }
    await import(entry.href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import('../src/cli/main.ts');
  }
}
