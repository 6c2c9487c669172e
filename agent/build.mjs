// Bundles the agent for plain node into `dist/`: the entry `flotilla-agent.mjs` and the chunks
// a command loads only when it runs (join, the air-gap import and export, the health endpoints
// with prom-client, pino-pretty). Every dependency is compiled in: the agent image ships node
// and these files, no node_modules.
//
// `node build.mjs [--metafile]` (npm run build -w @flotilla/agent) builds it;
// `bin/flotilla-agent.js` calls buildAgent() itself when the bundle is missing or older than a
// source it was built from; deploy/docker/agent.Dockerfile runs it. How it is built and when it
// is stale: scripts/esbuild-bundle.mjs, shared with the hub's CLI.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBundle, isMain, workspacePlugin } from '../scripts/esbuild-bundle.mjs';

const AGENT = fileURLToPath(new URL('.', import.meta.url));

/** Builds `dist/flotilla-agent.mjs` and its chunks; bin/flotilla-agent.js reads the same path. */
export function buildAgent({ metafile = false } = {}) {
  return buildBundle({
    name: 'flotilla-agent',
    source: join(AGENT, 'src', 'cli', 'main.ts'),
    outDir: join(AGENT, 'dist'),
    metafile,
    options: {
      minify: true,
      legalComments: 'linked',
      plugins: [workspacePlugin({ root: join(AGENT, '..'), externalPackages: false })],
    },
  });
}

if (isMain(import.meta.url)) {
  const entry = await buildAgent({ metafile: process.argv.includes('--metafile') });
  console.log(`built ${entry}`);
}
