// Bundles the agent into one file, `dist/flotilla-agent.mjs`, run by plain node: what the
// agent image ships. Used by `npm run build -w @flotilla/agent` and deploy/docker/agent.Dockerfile.
import { build } from 'esbuild';

await build({
  entryPoints: [new URL('./src/cli/main.ts', import.meta.url).pathname],
  outfile: new URL('./dist/flotilla-agent.mjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'external',
  logLevel: 'warning',
  // Some dependencies are CommonJS and call require() at run time.
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
});
