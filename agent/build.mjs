// Bundles the agent for plain node into `dist/`: the entry `flotilla-agent.mjs` and the chunks
// a command loads only when it runs (join, the air-gap import and export, the health endpoints
// with prom-client, pino-pretty). Every dependency is compiled in: the agent image ships node
// and these files, no node_modules. @flotilla/shared and @flotilla/proto are barrels of
// modules that only declare things: they are marked free of side effects, so what the agent
// does not use of them (and the libraries only that uses) is left out.
//
// `node build.mjs [--metafile]` (npm run build -w @flotilla/agent) builds it;
// `bin/flotilla-agent.js` calls buildAgent() itself when the bundle is missing or older than a
// source it was built from; deploy/docker/agent.Dockerfile runs it.
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const AGENT = fileURLToPath(new URL('.', import.meta.url));
/** Where the bundle lives; bin/flotilla-agent.js reads the same paths. */
export const OUT_DIR = join(AGENT, 'dist');
export const ENTRY = 'flotilla-agent.mjs';
/** The absolute paths of the sources the bundle was built from, for the freshness check. */
export const INPUTS = 'inputs.json';

const WORKSPACE_SRC = ['shared', 'proto'].map((p) => join(AGENT, '..', p, 'src'));

const workspaceWithoutSideEffects = {
  name: 'workspace-without-side-effects',
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'resolving') return undefined;
      const workspace = args.path.startsWith('@flotilla/');
      const fromWorkspace = WORKSPACE_SRC.some((dir) => args.importer.startsWith(dir));
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

/**
 * Builds into a private temp dir, then renames the files into `dist/`, the entry and the inputs
 * list last: concurrent builds (agents started at once by tests) never leave a torn file, and a
 * reader never sees an entry whose chunks are not there yet.
 */
export async function buildAgent({ metafile = false } = {}) {
  const { build } = await import('esbuild');
  mkdirSync(OUT_DIR, { recursive: true });
  const tmp = mkdtempSync(join(OUT_DIR, '.build-'));
  try {
    const result = await build({
      entryPoints: { 'flotilla-agent': join(AGENT, 'src', 'cli', 'main.ts') },
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      minify: true,
      legalComments: 'linked',
      logLevel: 'warning',
      metafile: true,
      plugins: [workspaceWithoutSideEffects],
      // Some dependencies are CommonJS and call require() at run time.
      banner: {
        js: "import { createRequire as __flotillaRequire } from 'node:module'; const require = __flotillaRequire(import.meta.url);",
      },
    });
    const inputs = Object.keys(result.metafile.inputs).map((p) => join(process.cwd(), p));
    writeFileSync(join(tmp, INPUTS), JSON.stringify(inputs));
    if (metafile) writeFileSync(join(tmp, 'meta.json'), JSON.stringify(result.metafile));
    else rmSync(join(OUT_DIR, 'meta.json'), { force: true });
    const files = readdirSync(tmp).filter((f) => !f.startsWith('.'));
    const last = [ENTRY, INPUTS];
    for (const f of [...files.filter((f) => !last.includes(f)), ...last])
      renameSync(join(tmp, f), join(OUT_DIR, f));
    // Chunks of earlier builds (their names carry a content hash) are no longer referenced by
    // this entry, but a process started from an earlier build may still import one lazily:
    // only chunks older than an hour go.
    const stale = Date.now() - 3600_000;
    for (const f of readdirSync(OUT_DIR))
      if (
        (f.endsWith('.mjs') || f.endsWith('.LEGAL.txt')) &&
        !files.includes(f) &&
        (statSync(join(OUT_DIR, f), { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) < stale
      )
        rmSync(join(OUT_DIR, f), { force: true });
    return join(OUT_DIR, ENTRY);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const entry = await buildAgent({ metafile: process.argv.includes('--metafile') });
  console.log(`built ${entry}`);
}
