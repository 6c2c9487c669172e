/**
 * `npm run bench:publish`: the hub's publish pass alone at fleet size. N clusters registered
 * through the admin API and never joined (no agents), a real nats-server, PostgreSQL and one
 * or more hub replicas; each round commits a change to every environment (a distinct bundle
 * per cluster), fires the webhook and times until every new bundle is announced on NATS.
 *
 *   npm run bench:publish -- [--clusters N] [--rounds R] [--replicas H] [--database postgres|pglite]
 *                            [--environments E] [--profile DIR] [--json]
 *
 * Prints per round commit → every bundle published, webhook → every bundle published, and the
 * CPU seconds the hub replicas, nats-server and PostgreSQL spent meanwhile, with the load
 * average (the machine is shared: CPU per pass is the steadier figure). `--profile DIR` runs
 * every replica with `node --cpu-prof` and prints where each spent the passes. With `--json`
 * the last line is one JSON object.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { formatProfileSummary } from './cpu-profile.js';
import { runPublishBench } from './publish-pass.js';
import { formatPercentiles, machineLine } from './report.js';

const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    replicas: { type: 'string', default: '1' },
    database: { type: 'string', default: 'postgres' },
    environments: { type: 'string' },
    profile: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

function int(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench:publish: --${flag}: a whole number of at least 1, got "${value}"\n`);
    process.exit(2);
  }
  return n;
}
if (values.database !== 'pglite' && values.database !== 'postgres') {
  process.stderr.write(`bench:publish: --database: postgres or pglite, got "${values.database}"\n`);
  process.exit(2);
}

const loadBefore = loadavg()[0]!;
const r = await runPublishBench({
  clusters: int('clusters', values.clusters),
  rounds: int('rounds', values.rounds),
  replicas: int('replicas', values.replicas),
  database: values.database,
  ...(values.environments ? { environments: int('environments', values.environments) } : {}),
  ...(values.profile ? { profileDir: values.profile } : {}),
  progress: (line) => process.stderr.write(`bench:publish: ${line}\n`),
});

const s = (x: number) => x.toFixed(2);
console.log(
  [
    'Flotilla publish-pass benchmark (real hub replicas, nats-server and PostgreSQL; registered clusters, no agents)',
    machineLine(),
    `load average (1 min) at start ${loadBefore.toFixed(1)}, at end ${loadavg()[0]!.toFixed(1)}: other work on the machine shares its cores`,
    `fleet: ${r.clusters} clusters in ${r.environments} environments (4 objects each, every bundle distinct), ${r.replicas} hub replica(s) on ${r.database}, ${r.rounds.length} rounds, webhook-triggered`,
    `setup: ${r.clusters} clusters registered in ${r.setup.registerMs} ms; a pass then took ${r.setup.firstPassMs} ms`,
    ...r.rounds.map(
      (x, i) =>
        `round ${i + 1}: published ${x.publishMs.toFixed(0)} ms after the commit (${x.passMs.toFixed(0)} ms after the webhook); CPU s: hub ${s(x.hubCpuS)}${r.replicas > 1 ? ` (${x.hubCpuSByReplica.map(s).join(' + ')})` : ''}, nats-server ${s(x.natsCpuS)}${x.dbCpuS !== undefined ? `, PostgreSQL ${s(x.dbCpuS)}` : ''}; load average ${x.load[0].toFixed(1)} → ${x.load[1].toFixed(1)}`,
    ),
    `commit → every bundle published:  ${formatPercentiles(r.publishMs)}`,
    `webhook → every bundle published: ${formatPercentiles(r.passMs)}`,
    `hub CPU per pass (replicas summed): ${formatPercentiles(r.hubCpuMs)}`,
    `one pass over the commit just published: ${formatPercentiles(r.unchangedPassMs)} (${r.unchangedPublished} bundles published by them)`,
    `hub peak RSS ${r.hubRssMiB} MiB${r.replicas > 1 ? ' (largest replica)' : ''}`,
    ...(r.profiles ?? []).flatMap((p, i) => [
      `hub replica ${i} CPU profile (main thread): ${p.file}`,
      ...formatProfileSummary('from each webhook to every bundle published', p.changing),
      ...formatProfileSummary('during the unchanged passes', p.unchanged),
    ]),
  ].join('\n'),
);
if (values.json) {
  console.log(
    JSON.stringify({
      clusters: r.clusters,
      replicas: r.replicas,
      database: r.database,
      environments: r.environments,
      publishMs: r.publishMs,
      passMs: r.passMs,
      hubCpuMs: r.hubCpuMs,
      unchangedPassMs: r.unchangedPassMs,
      unchangedPublished: r.unchangedPublished,
      hubRssMiB: r.hubRssMiB,
      rounds: r.rounds,
      loadAverage: { start: loadBefore, end: loadavg()[0]! },
    }),
  );
}
