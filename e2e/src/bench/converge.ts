/**
 * `npm run bench`: commit-to-converged time of a real fleet on this machine. Starts the same
 * processes as the demo (git over HTTP, nats-server, hub on PGlite, one Kubernetes API test
 * server and one agent per cluster), then for each round pushes one commit that changes every
 * environment, fires the git webhook as a git host would, and times until every cluster
 * reports that revision applied (Synced) and Healthy. The simulated controllers are set to
 * be ready at once, so the figures are Flotilla's own: fetch, render, sign, publish, pull,
 * verify, apply, assess, report, store.
 *
 *   npm run bench -- [--clusters N] [--rounds R]
 */
import { parseArgs } from 'node:util';
import { appFiles } from '../fleet/demo-repo.js';
import { type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { machineLine, msStats } from './report.js';

const { values } = parseArgs({
  options: { clusters: { type: 'string', default: '3' }, rounds: { type: 'string', default: '10' } },
});
const clusterCount = Number(values.clusters);
const rounds = Number(values.rounds);
const envs = Array.from({ length: clusterCount }, (_, i) => `env${i + 1}`);

const files = (replicas: number) => Object.assign({}, ...envs.map((e) => appFiles(e, { replicas })));

const fleet = await startFleet({
  repoFiles: {
    'flotilla.yaml': `environments:\n${envs.map((e) => `  - {name: ${e}, path: environments/${e}}`).join('\n')}\n`,
    ...files(1),
  },
  clusters: envs.map((e) => ({ name: `${e}-1`, environment: e })),
  poll: '60s',
  heartbeatWindow: '30s',
  readyDelayMs: 0,
});

const names = envs.map((e) => `${e}-1`);
/** The admin API directly: a CLI process per poll would time node's start-up, not Flotilla. */
const fleetStatus = async () => {
  const res = await fetch(`${fleet.hub.http}/api/v1/fleet/status`, {
    headers: { authorization: `Bearer ${fleet.adminToken}` },
  });
  return ((await res.json()) as { clusters: FleetStatusRow[] }).clusters;
};
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
try {
  await fleet.waitSynced();
  const samples: { applied: number; converged: number }[] = [];
  for (let round = 1; round <= rounds; round++) {
    const start = process.hrtime.bigint();
    const revision = await fleet.work.commit(files(round + 1), `bench: round ${round}`);
    await fleet.poke();
    let applied: number | undefined;
    for (;;) {
      const rows = (await fleetStatus()).filter((r) => names.includes(r.name));
      const at = rows.filter((r) => r.revision === revision);
      if (applied === undefined && at.length === names.length) applied = ms(start);
      if (at.length === names.length && at.every((r) => r.sync === 'Synced' && r.health === 'Healthy')) break;
      if (ms(start) > 120_000)
        throw new Error(`round ${round}: not converged in 120 s: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    const converged = ms(start);
    samples.push({ applied: applied ?? converged, converged });
    process.stderr.write(`round ${round}/${rounds}: converged in ${converged.toFixed(0)} ms\n`);
  }
  console.log(
    [
      'Flotilla commit-to-converged benchmark',
      machineLine(),
      `fleet: ${clusterCount} clusters (one environment each, 4 objects), hub on PGlite, webhook-triggered, ${rounds} rounds`,
      `push → every cluster reports the revision applied: ${msStats(samples.map((x) => x.applied))}`,
      `push → every cluster Synced and Healthy at it:      ${msStats(samples.map((x) => x.converged))}`,
      '(times include the git push; the admin API is polled every 25 ms)',
    ].join('\n'),
  );
} finally {
  await fleet.stop();
}
