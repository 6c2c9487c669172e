// Bundles the `flotilla` CLI with esbuild into `dist/bin/` (an entry plus chunks), run by
// plain node: a client command loads only the entry chunk (argument parsing and an HTTP
// client), and `hub start`/`hub init`/`hub rotate-key` load the hub's chunk when they run.
// Our own TypeScript (hub, @flotilla/shared, @flotilla/proto) is compiled in; third-party
// packages stay imports from node_modules, so the hub's PGlite WASM, pino transports and the
// kubectl layer zip are found where npm put them.
//
// `node build.mjs` (npm run build -w @flotilla/hub) builds it; `bin/flotilla.js` calls
// buildCli() itself when the bundle is missing or older than a source it was built from.
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HUB = fileURLToPath(new URL('.', import.meta.url));
/** Where the bundle lives; bin/flotilla.js reads the same paths. */
export const OUT_DIR = join(HUB, 'dist', 'bin');
export const ENTRY = 'flotilla.mjs';
/** The absolute paths of the sources the bundle was built from, for the freshness check. */
export const INPUTS = 'inputs.json';

const WORKSPACE_SRC = ['shared', 'proto'].map((p) => join(HUB, '..', p, 'src'));

/**
 * Third-party packages and node builtins stay imports; our workspace packages are compiled in.
 * @flotilla/shared and @flotilla/proto are barrels of modules that only declare things: they
 * are marked free of side effects, so a client command that uses `errorMessage` does not also
 * evaluate the logger (pino), gRPC and protobuf modules the barrel re-exports.
 */
const externalPackages = {
  name: 'external-packages',
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'resolving') return undefined;
      const workspace = args.path.startsWith('@flotilla/');
      if (/^[^./]/.test(args.path) && !workspace) return { path: args.path, external: true };
      const fromWorkspace = WORKSPACE_SRC.some((dir) => args.importer.startsWith(dir));
      if (!workspace && !fromWorkspace) return undefined;
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
 * Builds the bundle into a private temp dir, then renames its files into `dist/bin/`, the
 * entry and the inputs list last: concurrent builds (two test processes) never leave a torn
 * file, and a reader never sees an entry whose chunks are not there yet.
 */
export async function buildCli({ metafile = false } = {}) {
  const { build } = await import('esbuild');
  mkdirSync(OUT_DIR, { recursive: true });
  const tmp = mkdtempSync(join(OUT_DIR, '.build-'));
  try {
    const result = await build({
      entryPoints: { flotilla: join(HUB, 'src', 'cli', 'main.ts') },
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // Whitespace and syntax only: function names stay readable in stack traces and CPU profiles.
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      logLevel: 'warning',
      metafile: true,
      plugins: [externalPackages],
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
        f.endsWith('.mjs') &&
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
  const entry = await buildCli({ metafile: process.argv.includes('--metafile') });
  console.log(`built ${entry}`);
}
