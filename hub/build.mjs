// Bundles the `flotilla` CLI with esbuild into `dist/bin/` (an entry plus chunks), run by
// plain node: a client command loads only the entry chunk (argument parsing and an HTTP
// client), and `hub start`/`hub init`/`hub rotate-key` load the hub's chunk when they run.
// Our own TypeScript (hub, @flotilla/shared, @flotilla/proto) is compiled in; third-party
// packages stay imports from node_modules, so the hub's PGlite WASM, pino transports and the
// kubectl layer zip are found where npm put them.
//
// `node build.mjs [--metafile]` (npm run build -w @flotilla/hub) builds it; `bin/flotilla.js`
// calls buildCli() itself when the bundle is missing or older than a source it was built from.
// How it is built and when it is stale: scripts/esbuild-bundle.mjs, shared with the agent.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBundle, isMain, workspacePlugin } from '../scripts/esbuild-bundle.mjs';

const HUB = fileURLToPath(new URL('.', import.meta.url));

/** Builds `dist/bin/flotilla.mjs` and its chunks; bin/flotilla.js reads the same path. */
export function buildCli({ metafile = false } = {}) {
  return buildBundle({
    name: 'flotilla',
    source: join(HUB, 'src', 'cli', 'main.ts'),
    outDir: join(HUB, 'dist', 'bin'),
    metafile,
    options: {
      // Whitespace and syntax only: function names stay readable in stack traces and CPU profiles.
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      plugins: [workspacePlugin({ root: join(HUB, '..'), externalPackages: true })],
    },
  });
}

if (isMain(import.meta.url)) {
  const entry = await buildCli({ metafile: process.argv.includes('--metafile') });
  console.log(`built ${entry}`);
}
