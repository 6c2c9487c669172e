/**
 * `npm run bench:fleet`: the hub at fleet size. N real agents (join, NATS pull, signature
 * checks, outbox, gRPC status) over simulated in-memory clusters, packed into a few agent
 * processes, against a real hub, nats-server and git server. Prints what a fleet operator
 * asks: commit → published, commit → converged, an idle pass, ingest rate, API and
 * dashboard latency, hub and nats-server memory and CPU, and recovery from a hub crash.
 *
 *   npm run bench:fleet -- --clusters N [--rounds R] [--replicas H] [--database pglite|postgres]
 *                          [--environments E] [--workers W] [--ready-delay MS] [--agent-disk] [--profile DIR] [--apps] [--json]
 *
 * `--apps` adds targeting: half the clusters run a fleet-wide app selected by label, a quarter
 * render their environment's gpu group (a directory of its own).
 *
 * The agents' state dirs are on tmpfs (`/dev/shm`) unless `--agent-disk`: each real agent
 * fsyncs its outbox on its own cluster's disk, and 1,000 of them on this machine's one disk
 * would measure the disk. `--profile DIR` runs every hub replica and both agent processes with
 * `node --cpu-prof` and prints, for each (named `hub-0 (leader)`, `hub-1 (follower)`,
 * `agents-0`… with its pid and file), its top self-time functions during the unchanged passes,
 * the changing commits, the rounds until every cluster converged, and the ingest flood. With
 * `--json` the last line is one JSON object.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { formatProfileSummary } from './cpu-profile.js';
import { type FleetBenchResult, runFleetBench } from './fleet-sim.js';
import { formatPercentiles, machineLine } from './report.js';

const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    replicas: { type: 'string', default: '1' },
    database: { type: 'string' },
    environments: { type: 'string' },
    workers: { type: 'string' },
    'ready-delay': { type: 'string' },
    'agent-disk': { type: 'boolean' },
    profile: { type: 'string' },
    json: { type: 'boolean', default: false },
    apps: { type: 'boolean', default: false },
  },
});

function int(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`bench:fleet: --${flag}: a whole number is required, got "${value}"\n`);
    process.exit(2);
  }
  return n;
}
if (values.database !== undefined && values.database !== 'pglite' && values.database !== 'postgres') {
  process.stderr.write(`bench:fleet: --database: pglite or postgres, got "${values.database}"\n`);
  process.exit(2);
}

const loadBefore = loadavg();
const result = await runFleetBench({
  clusters: int('clusters', values.clusters)!,
  rounds: int('rounds', values.rounds)!,
  replicas: int('replicas', values.replicas)!,
  ...(values.database ? { database: values.database as 'pglite' | 'postgres' } : {}),
  ...(values.environments ? { environments: int('environments', values.environments)! } : {}),
  ...(values.workers ? { workers: int('workers', values.workers)! } : {}),
  ...(values['ready-delay'] ? { readyDelayMs: int('ready-delay', values['ready-delay'])! } : {}),
  ...(values['agent-disk'] ? { agentState: 'disk' as const } : {}),
  ...(values.profile ? { profileDir: values.profile } : {}),
  apps: values.apps === true,
  progress: (line) => process.stderr.write(`bench:fleet: ${line}\n`),
});

const summary = formatProfileSummary;
const cpu = (r: FleetBenchResult['hubRounds']) => r.map((x) => x.cpuS.toFixed(1)).join(', ');
const r = result;
console.log(
  [
    'Flotilla fleet benchmark (real hub, nats-server and agents; simulated in-memory clusters)',
    machineLine(),
    `load average (1 min) at start ${loadBefore[0]!.toFixed(1)}, at end ${loadavg()[0]!.toFixed(1)}: other work on the machine shares its cores`,
    `fleet: ${r.clusters} clusters in ${r.environments} environments (4 objects each${r.apps ? '; half also run a label-selected app, a quarter a label group' : ''}), ${r.replicas} hub replica(s) on ${r.database}, agents in ${r.workers} processes (state dirs on ${r.agentState}), ${r.rounds} rounds, webhook-triggered`,
    `setup: ${r.clusters} clusters registered in ${r.setup.registerMs} ms; joined and started in ${r.setup.joinMs} ms; first bundles Synced and Healthy ${r.setup.firstConvergeMs} ms later`,
    `commit → every bundle published (per round):          ${formatPercentiles(r.publishMs)}`,
    `commit → every cluster Synced and Healthy (per round): ${formatPercentiles(r.convergeMs)}`,
    `commit → a cluster Synced and Healthy (per cluster):   ${formatPercentiles(r.clusterConvergeMs)}`,
    `one publish pass over an unchanged commit:               ${formatPercentiles(r.unchangedPassMs)} (${r.unchangedPublished} bundles published by them)`,
    `status ingest in a burst: ${r.ingestPerSec} reports/s stored (${r.ingest.reports} reports, drift and heal, from the first sent to the last acknowledged in ${r.ingest.ms} ms, after ${r.ingest.edited} clusters drifted at once; ${r.ingest.heartbeats} heartbeats meanwhile, not counted)`,
    `status ingest capacity: ${r.ingestCapacityPerSec} reports/s stored (${r.ingestCapacity.reports} full status reports queued by every agent at once, all in the outboxes after ${r.ingestCapacity.appendMs} ms, all acknowledged in ${r.ingestCapacity.ms} ms); CPU a report: ${Object.entries(
      r.ingestCapacity.cpuUsPerReport,
    )
      .map(([k, v]) => `${k} ${v} µs`)
      .join(', ')}`,
    `GET /api/v1/fleet/status: ${formatPercentiles(r.fleetStatusMs)}`,
    `GET /ui (fleet page):     ${formatPercentiles(r.uiFleetMs)}`,
    `hub${r.replicas > 1 ? ` (${r.replicas} replicas: largest RSS, CPU summed)` : ''}: peak RSS ${r.hubRssMiB} MiB; CPU s per round ${cpu(r.hubRounds)}`,
    `nats-server: peak RSS ${r.natsRssMiB} MiB; CPU s per round ${cpu(r.natsRounds)}`,
    ...(r.database === 'postgres'
      ? [`PostgreSQL: CPU s per round ${r.postgresCpuSPerRound.map((c) => c.toFixed(1)).join(', ')}`]
      : []),
    `agent processes: CPU s per round ${r.agentsCpuSPerRound.map((c) => c.toFixed(1)).join(', ')}`,
    `agents: ${r.agentsRssMiB} MiB RSS for ${r.clusters} (${((r.agentsRssMiB * 1024) / r.clusters).toFixed(0)} KiB each)`,
    `hub SIGKILL → restarted, every agent connected with current status: ${r.restartRecoveryMs} ms (the new hub ready after ${r.restartHubReadyMs} ms)`,
    `(publication seen on NATS notify.*; convergence is the hub's acknowledgement of each agent's first Synced and Healthy report, and ingest its acknowledgements of the burst, both timed at the agents; neither polls the hub; the restart is read from the fleet status API every ${r.pollMs} ms or 4× its answer time)`,
    ...(r.replicas > 1
      ? [
          `hub CPU s per round, each replica: ${r.replicaRounds.map((x) => `${x.name}${x.leader ? ' (leader)' : ''} ${x.cpuS.map((c) => c.toFixed(1)).join(', ')}`).join('; ')}`,
        ]
      : []),
    ...(r.profiles ?? []).flatMap((p) => [
      `CPU profile of ${p.name}, pid ${p.pid} (main thread): ${p.file}`,
      ...summary('during the unchanged passes', p.unchanged),
      ...summary('from each commit to every bundle published', p.changing),
      ...summary('from each commit to every cluster Synced and Healthy', p.converging),
      ...summary('while the hub stores the queued status reports', p.ingest),
    ]),
  ].join('\n'),
);
if (values.json) {
  console.log(
    JSON.stringify({
      clusters: r.clusters,
      replicas: r.replicas,
      publishMs: r.publishMs,
      convergeMs: r.convergeMs,
      unchangedPassMs: r.unchangedPassMs,
      ingestPerSec: r.ingestPerSec,
      ingestReports: r.ingest.reports,
      ingestHeartbeats: r.ingest.heartbeats,
      ingestCapacityPerSec: r.ingestCapacityPerSec,
      ingestCapacityCpuUsPerReport: r.ingestCapacity.cpuUsPerReport,
      fleetStatusMs: r.fleetStatusMs,
      uiFleetMs: r.uiFleetMs,
      hubRssMiB: r.hubRssMiB,
      natsRssMiB: r.natsRssMiB,
      restartRecoveryMs: r.restartRecoveryMs,
      restartHubReadyMs: r.restartHubReadyMs,
      clusterConvergeMs: r.clusterConvergeMs,
      hubCpuSPerRound: r.hubRounds.map((x) => x.cpuS),
      replicaCpuSPerRound: r.replicaRounds,
      postgresCpuSPerRound: r.postgresCpuSPerRound,
      agentsCpuSPerRound: r.agentsCpuSPerRound,
      natsCpuSPerRound: r.natsRounds.map((x) => x.cpuS),
      agentsRssMiB: r.agentsRssMiB,
      database: r.database,
    }),
  );
}
