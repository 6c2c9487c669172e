/**
 * `npm run bench:ingest`: the hub's own cost of joining agents and of storing their status,
 * measured in process. This process runs the real hub (gRPC over TLS, cluster service, status
 * ingest, its database) and nothing else; a forked process plays the agents over the real
 * protocol (hub/src/bench/ingest-load.ts). A real nats-server, a git repository over smart
 * HTTP and a private PostgreSQL (or PGlite) are started for it.
 *
 *   npm run bench:ingest -- [--clusters N] [--reports K] [--rounds R] [--database postgres|pglite]
 *                           [--join-concurrency C] [--profile DIR] [--json]
 *
 * It prints Register calls per second, and for each round (every agent queues K full status
 * reports at once, every other one with a drifted field) the reports stored per second from
 * the first written to the last acknowledged, with the CPU the hub, PostgreSQL and the agents'
 * process spent meanwhile: on a machine shared with other work the CPU per report is the
 * steadier figure. `--profile DIR` profiles the hub's thread during the joins and the rounds
 * (`join.cpuprofile`, `ingest.cpuprofile`) and prints where the time went.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  formatProfileSummary,
  lanes,
  machineLine,
  percentiles,
  summariseProfile,
  treeCpuTicks,
} from '@flotilla/e2e/bench';
import {
  type GitServer,
  type NatsServer,
  type PostgresServer,
  startGitServer,
  startNatsServer,
  startPostgresServer,
} from '@flotilla/e2e/harness';
import { createLogger } from '@flotilla/shared';
import { count } from 'drizzle-orm';
import { statusReports } from '../db/schema.js';
import { type Hub, startHub } from '../hub.js';
import { initDataDir } from '../pki/init.js';
import type { LoadReply, LoadRequest } from './ingest-load.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');

const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '100' },
    reports: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    database: { type: 'string', default: 'postgres' },
    'join-concurrency': { type: 'string', default: '16' },
    profile: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const int = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench:ingest: --${name}: a whole number of at least 1, got "${v}"\n`);
    process.exit(2);
  }
  return n;
};
const clusters = int('clusters', values.clusters);
const perAgent = int('reports', values.reports);
const rounds = int('rounds', values.rounds);
const joinConcurrency = int('join-concurrency', values['join-concurrency']);
const database = values.database;
if (database !== 'postgres' && database !== 'pglite') {
  process.stderr.write(`bench:ingest: --database: postgres or pglite, got "${database}"\n`);
  process.exit(2);
}
const say = (line: string) => process.stderr.write(`bench:ingest: ${line}\n`);

/** The agents' process: one request at a time, answered by the reply of the expected kind. */
class LoadProcess {
  private readonly child = fork(join(HERE, 'ingest-load.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });

  ask<K extends LoadReply['op']>(request: LoadRequest, op: K): Promise<Extract<LoadReply, { op: K }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: LoadReply) => {
        if (m.op !== op && m.op !== 'error') return;
        done();
        if (m.op === 'error') reject(new Error(`agents' process: ${m.error}`));
        else resolve(m as Extract<LoadReply, { op: K }>);
      };
      const onExit = (code: number | null) => {
        done();
        reject(new Error(`agents' process exited (${code}) during ${request.op}`));
      };
      const done = () => {
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send(request);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.ask({ op: 'stop' }, 'stopped').catch(() => this.child.kill('SIGKILL'));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** CPU ms of this process (the hub) and of the database server, over what `fn` does. */
async function measured<T>(pg: PostgresServer | undefined, fn: () => Promise<T>) {
  const pid = pg?.process.pid;
  const pgBefore = pid ? treeCpuTicks(pid) : 0;
  const cpu = process.cpuUsage();
  const value = await fn();
  const used = process.cpuUsage(cpu);
  return {
    value,
    hubCpuMs: Math.round((used.user + used.system) / 1000),
    dbCpuMs: pid ? (treeCpuTicks(pid) - pgBefore) * 10 : undefined,
  };
}

/** Profiles this thread over `fn` when a profile dir was given, into `file` there. */
async function profiled<T>(session: Session | undefined, file: string, fn: () => Promise<T>) {
  if (!session || !values.profile) return { value: await fn() };
  await session.post('Profiler.start');
  let value: T;
  try {
    value = await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(values.profile, file), JSON.stringify(profile));
  }
  return { value, path: join(values.profile, file) };
}

/** The whole of a profile: it covers just the phase it was taken over. */
const ALL = [{ fromUs: 0, toUs: Number.MAX_SAFE_INTEGER }];

const FLEET = `environments:
  - name: dev
    path: environments/dev
pipeline: [dev]
`;
const APP = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  cluster: \${cluster.name}
`;

const loadBefore = loadavg()[0]!;
const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-ingest-'));
let pg: PostgresServer | undefined;
let nats: NatsServer | undefined;
let git: GitServer | undefined;
let hub: Hub | undefined;
let load: LoadProcess | undefined;
let session: Session | undefined;
try {
  await initDataDir(dir);
  nats = await startNatsServer({ config: readFileSync(join(dir, 'nats-server.conf'), 'utf8') });
  git = await startGitServer();
  await git.createRepo('fleet', { 'flotilla.yaml': FLEET, 'environments/dev/app.yaml': APP });
  if (database === 'postgres') pg = await startPostgresServer();
  hub = await startHub({
    dataDir: dir,
    nats: nats.url,
    repo: { url: `${git.url}/fleet.git` },
    ...(pg ? { database: pg.url } : {}),
    http: '127.0.0.1:0',
    grpc: '127.0.0.1:0',
    pollMs: 0,
    heartbeatWindowMs: 600_000,
    logger: createLogger({ name: 'hub', level: 'silent' }),
  });
  const h = hub;
  if (values.profile) {
    mkdirSync(values.profile, { recursive: true });
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
  }

  say(`adding ${clusters} clusters`);
  const names = Array.from({ length: clusters }, (_, i) => `c${String(i + 1).padStart(5, '0')}`);
  const tokens: string[] = [];
  await lanes(8, names, async (name, i) => {
    tokens[i] = (await h.clusters.add({ name, environment: 'dev' }, 'bench')).token;
  });
  // The bundles of the new clusters are rendered and published: let that settle first.
  await h.publishLoop.trigger('bench: clusters added');

  load = new LoadProcess();
  const l = load;
  say(`${clusters} Register calls, ${joinConcurrency} at a time`);
  const joinRun = await profiled(session, 'join.cpuprofile', () =>
    measured(pg, () =>
      l.ask(
        {
          op: 'join',
          address: h.grpcAddress,
          caPem: h.identity.tls.caPem,
          tokens,
          concurrency: joinConcurrency,
        },
        'joined',
      ),
    ),
  );
  const joined = joinRun.value;
  say('opening a status stream per agent');
  const opened = await l.ask({ op: 'open' }, 'opened');

  const results: Array<{
    perSec: number;
    ms: number;
    hubCpuMs: number;
    dbCpuMs?: number;
    agentsCpuMs: number;
  }> = [];
  const ingestRun = await profiled(session, 'ingest.cpuprofile', async () => {
    for (let r = 1; r <= rounds; r++) {
      say(`round ${r}/${rounds}: ${perAgent} status reports queued by each of ${clusters} agents at once`);
      const m = await measured(pg, () => l.ask({ op: 'flood', perAgent, timeoutMs: 300_000 }, 'flooded'));
      results.push({
        perSec: Math.round((m.value.reports / m.value.ms) * 1000),
        ms: m.value.ms,
        hubCpuMs: m.hubCpuMs,
        ...(m.dbCpuMs !== undefined ? { dbCpuMs: m.dbCpuMs } : {}),
        agentsCpuMs: m.value.cpuMs,
      });
    }
  });
  const [{ stored }] = (await h.database.db.select({ stored: count() }).from(statusReports)) as [
    { stored: number },
  ];
  const expected = clusters * perAgent * rounds;
  if (Number(stored) !== expected)
    throw new Error(`status_reports holds ${stored} reports, expected each of the ${expected} sent once`);

  const reports = clusters * perAgent;
  const perReport = (cpuMs: number | undefined) =>
    cpuMs === undefined ? 'n/a' : `${((cpuMs * 1000) / reports).toFixed(0)} µs`;
  const rate = percentiles(results.map((x) => x.perSec));
  const summary = {
    clusters,
    database,
    joinPerSec: Math.round((clusters / joined.value.ms) * 1000),
    joinMs: joined.value.ms,
    joinHubCpuMs: joined.hubCpuMs,
    ingestPerSec: rate,
    ingestRounds: results,
    loadAverage: { start: loadBefore, end: loadavg()[0]! },
  };
  console.log(
    [
      'Flotilla ingest benchmark (the real hub in this process; agents over real gRPC in another)',
      machineLine(),
      `load average (1 min) at start ${loadBefore.toFixed(1)}, at end ${loadavg()[0]!.toFixed(1)}: other work on the machine shares its cores`,
      `${clusters} clusters on ${database}; each round every agent queues ${perAgent} full status reports (4 objects, every other one with a drifted field) at once`,
      `Register: ${summary.joinPerSec} calls/s (${clusters} in ${joined.value.ms} ms, ${joinConcurrency} at a time); hub CPU ${joined.hubCpuMs} ms (${(joined.hubCpuMs / clusters).toFixed(1)} ms a join)${joined.dbCpuMs !== undefined ? `, PostgreSQL CPU ${joined.dbCpuMs} ms` : ''}`,
      `streams opened in ${opened.ms} ms`,
      ...results.map(
        (x, i) =>
          `round ${i + 1}: ${x.perSec} reports/s stored (${reports} in ${x.ms} ms); CPU per report: hub ${perReport(x.hubCpuMs)}, PostgreSQL ${perReport(x.dbCpuMs)}, agents ${perReport(x.agentsCpuMs)}`,
      ),
      `ingest: p50 ${rate.p50} reports/s, max ${rate.max} reports/s over ${rounds} rounds; every report stored once (${stored} rows)`,
      ...(joinRun.path ? [`hub CPU profile: ${joinRun.path}`] : []),
      ...(joinRun.path
        ? formatProfileSummary('during the Register calls', summariseProfile(joinRun.path, ALL, ROOT))
        : []),
      ...(ingestRun.path ? [`hub CPU profile: ${ingestRun.path}`] : []),
      ...(ingestRun.path
        ? formatProfileSummary('during the rounds', summariseProfile(ingestRun.path, ALL, ROOT))
        : []),
    ].join('\n'),
  );
  if (values.json) console.log(JSON.stringify(summary));
} finally {
  session?.disconnect();
  await load?.stop();
  await hub?.stop();
  await pg?.destroy();
  await git?.stop();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
}
