/**
 * `npm run demo`: a working demo fleet on this machine. Starts a git source served over
 * HTTP, nats-server, the hub on PGlite, three Kubernetes API test servers (dev, staging,
 * prod) and an agent for each, joined with one-time tokens; waits until the fleet is
 * Synced; writes `.flotilla-demo/env` and prints what to try. Ctrl-C stops everything.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../fleet/cli.js';
import { demoRepoFiles } from '../fleet/demo-repo.js';
import { startFleet } from '../fleet/fleet.js';

const dir = join(ROOT, '.flotilla-demo');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

const step = (text: string) => process.stdout.write(`• ${text}\n`);
step('starting git source, nats-server, hub (PGlite), three clusters and their agents…');
const fleet = await startFleet({
  baseDir: dir,
  repoFiles: demoRepoFiles(),
  branches: ['release'],
  clusters: [
    { name: 'dev', environment: 'dev', labels: { region: 'eu-west', tier: 'dev' } },
    { name: 'staging', environment: 'staging', labels: { region: 'eu-west', tier: 'staging' } },
    { name: 'prod', environment: 'prod', labels: { region: 'eu-central', tier: 'prod' } },
  ],
  poll: '5s',
  heartbeatWindow: '15s',
  readyDelayMs: 1000,
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  step('stopping the demo fleet…');
  await fleet.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

const c = (name: string) => fleet.clusters.get(name)!.kubeconfig;
const envFile = join(dir, 'env');
writeFileSync(
  envFile,
  [
    `export FLOTILLA_HUB=${fleet.hub.http}`,
    `export FLOTILLA_TOKEN=${fleet.adminToken}`,
    `export FLOTILLA_DEMO_REPO=${fleet.work.dir}`,
    `export KUBECONFIG_DEV=${c('dev')}`,
    `export KUBECONFIG_STAGING=${c('staging')}`,
    `export KUBECONFIG_PROD=${c('prod')}`,
    `export PATH="${join(ROOT, 'node_modules', '.bin')}:$PATH"`,
    '',
  ].join('\n'),
  { mode: 0o600 },
);

step('waiting until every cluster is Synced and Healthy…');
await fleet.waitSynced(undefined, { timeoutMs: 180_000 });
const status = await fleet.flotilla('fleet', 'status');
process.stdout.write(`\n${status.stdout}\n`);
process.stdout.write(`The demo fleet is up. In another terminal:

  source .flotilla-demo/env
  flotilla fleet status                      # every cluster: revision, generation, sync, health
  flotilla cluster list

  # 2. deliver to dev, then promote dev → staging → prod (prod lives on branch release)
  cd "$FLOTILLA_DEMO_REPO" && sed -i 's/replicas: 2/replicas: 3/' environments/dev/deployment.yaml \\
    && git commit -qam "dev: 3 replicas" && git push -q && cd -
  flotilla fleet status
  flotilla env diff dev staging
  flotilla promote dev staging && flotilla promote staging prod
  flotilla promote --history
  flotilla rollback prod

  # 3. drift: change a live object behind Flotilla's back, and watch it heal
  kubectl --kubeconfig "$KUBECONFIG_STAGING" -n shop scale deploy web --replicas=7
  flotilla fleet drift --history
  flotilla cluster show staging

  # 4. targeting: the monitoring app runs on tier=prod clusters; labels change what a cluster runs
  flotilla cluster list --selector 'tier in (prod)'
  flotilla cluster show prod --source app/monitoring
  flotilla cluster label staging tier=prod   # staging joins the app at once…
  kubectl --kubeconfig "$KUBECONFIG_STAGING" -n monitoring get cm node-agent
  flotilla cluster label staging tier=staging   # …and leaves it: its objects are pruned

  # 5. air-gapped: carry a bundle in and the status out by hand
  flotilla bundle export --cluster prod -o /tmp/prod.bundle
  flotilla-agent import /tmp/prod.bundle --state-dir .flotilla-demo/agents/prod
  flotilla-agent status export -o /tmp/prod.status --state-dir .flotilla-demo/agents/prod
  flotilla status import /tmp/prod.status

The same fleet in a browser: ${fleet.hub.http}/ui (log in with the admin token, $FLOTILLA_TOKEN).
The README walks through each of these. Ctrl-C stops the demo.
`);
