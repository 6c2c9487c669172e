/**
 * `npm run bench:drift`: how long a hand change in a cluster takes to be seen from the hub, and
 * to be healed. Starts the same processes as the demo (git over HTTP, nats-server, hub on
 * PGlite, one Kubernetes API test server and one agent per cluster) with two clusters: `watch-1`
 * (self-heal off: drift is reported and left) and `heal-1` (self-heal on). Each round scales the
 * Deployment by hand through the API server, as `kubectl scale` does, and times:
 *
 * - detect: change accepted → the hub's drift API lists the field with its new live value;
 * - heal: change accepted → the live object is back to what git says (self-heal);
 * - clear: change accepted → the hub holds the drift as opened and cleared (drift history).
 *
 *   npm run bench:drift -- [--rounds R]
 */
import { parseArgs } from 'node:util';
import { AppsV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { appFiles } from '../fleet/demo-repo.js';
import { startFleet } from '../fleet/fleet.js';
import { machineLine, msStats } from './report.js';

/** One row of the hub's drift API (`flotilla fleet drift -o json`, with history). */
interface FleetDrift {
  cluster: string;
  field: string;
  live: string;
  clearedAt?: string | null;
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' } } });
const rounds = Number(values.rounds);
const DESIRED = 2;

const fleet = await startFleet({
  repoFiles: {
    'flotilla.yaml': `environments:
  - {name: watch, path: environments/watch, policy: {selfHeal: false}}
  - {name: heal, path: environments/heal, policy: {selfHeal: true}}
`,
    ...appFiles('watch', { replicas: DESIRED }),
    ...appFiles('heal', { replicas: DESIRED }),
  },
  clusters: [
    { name: 'watch-1', environment: 'watch' },
    { name: 'heal-1', environment: 'heal' },
  ],
  poll: '60s',
  heartbeatWindow: '30s',
  readyDelayMs: 0,
  startAgents: false,
});
// Self-heal backs off while drift keeps coming back within --heal-reset of the last heal (a
// fight with another controller). Each round here is a fresh hand change, so the heal agent
// runs with a 1 s reset and the rounds are spaced past it; the default reset is 60 s.
const HEAL_RESET_S = 1;
for (const name of ['watch-1', 'heal-1']) {
  await fleet.joinAgent(name);
  await fleet.startAgent(name, name === 'heal-1' ? ['--heal-reset', String(HEAL_RESET_S)] : []);
}

const apps = (cluster: string) => {
  const kc = new KubeConfig();
  kc.loadFromFile(fleet.clusters.get(cluster)!.kubeconfig);
  return kc.makeApiClient(AppsV1Api);
};
/** What `kubectl scale` sends: a merge patch of the scale subresource. */
const scale = (api: AppsV1Api, replicas: number) =>
  api.patchNamespacedDeploymentScale(
    { name: 'web', namespace: 'shop', body: { spec: { replicas } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
const replicasOf = async (api: AppsV1Api) =>
  (await api.readNamespacedDeployment({ name: 'web', namespace: 'shop' })).spec?.replicas;
/** The admin API directly: a CLI process per poll would time node's start-up, not Flotilla. */
const drift = async (history: boolean) => {
  const res = await fetch(`${fleet.hub.http}/api/v1/fleet/drift${history ? '?history=1' : ''}`, {
    headers: { authorization: `Bearer ${fleet.adminToken}` },
  });
  return ((await res.json()) as { drift: FleetDrift[] }).drift;
};
const replicasRow = (rows: FleetDrift[], cluster: string, live: number) =>
  rows.find((d) => d.cluster === cluster && d.field === 'spec.replicas' && d.live === String(live));
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const until = async (what: string, start: bigint, done: () => Promise<boolean>, everyMs: number) => {
  while (!(await done())) {
    if (ms(start) > 60_000) throw new Error(`${what}: not seen in 60 s`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return ms(start);
};

try {
  await fleet.waitSynced();
  const watch = apps('watch-1');
  const heal = apps('heal-1');
  const detect: number[] = [];
  const healed: number[] = [];
  const cleared: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const replicas = 10 + round;

    let start = process.hrtime.bigint();
    await scale(watch, replicas);
    detect.push(
      await until(
        'drift on watch-1',
        start,
        async () => !!replicasRow(await drift(false), 'watch-1', replicas),
        10,
      ),
    );
    // Put it back by hand and let the hub see the drift close before the next round.
    await scale(watch, DESIRED);
    await until(
      'drift on watch-1 closed',
      start,
      async () => !replicasRow(await drift(false), 'watch-1', replicas),
      25,
    );

    await new Promise((r) => setTimeout(r, HEAL_RESET_S * 1000 + 200));
    start = process.hrtime.bigint();
    await scale(heal, replicas);
    const healedAt = until('heal-1 healed', start, async () => (await replicasOf(heal)) === DESIRED, 5);
    const clearedAt = until(
      'drift on heal-1 cleared at the hub',
      start,
      async () => !!replicasRow(await drift(true), 'heal-1', replicas)?.clearedAt,
      10,
    );
    healed.push(await healedAt);
    cleared.push(await clearedAt);
    process.stderr.write(
      `round ${round}/${rounds}: detect ${detect.at(-1)!.toFixed(0)} ms, heal ${healed.at(-1)!.toFixed(0)} ms, cleared ${cleared.at(-1)!.toFixed(0)} ms\n`,
    );
  }
  console.log(
    [
      'Flotilla drift benchmark',
      machineLine(),
      `fleet: 2 clusters (self-heal off and on), hub on PGlite, ${rounds} rounds of a hand scale of Deployment shop/web, ${HEAL_RESET_S + 0.2} s apart`,
      `change → drift listed by the hub (self-heal off):   ${msStats(detect)}`,
      `change → live object back to git (self-heal on):    ${msStats(healed)}`,
      `change → drift opened and cleared at the hub:       ${msStats(cleared)}`,
      '(the admin API is polled every 10 ms, the API server every 5 ms)',
    ].join('\n'),
  );
} finally {
  await fleet.stop();
}
