/**
 * The machinery of `npm run bench:fleet`: a real hub (one or more replicas), a real
 * nats-server, a git server, and N real agents whose clusters are simulated in memory,
 * packed into a few agent processes. Everything but the Kubernetes API is the product's own
 * code, started the way the other benchmarks and the journeys start it.
 */
import { type ChildProcess, fork } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { bin, ROOT } from '../fleet/cli.js';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { type PostgresServer, startPostgresServer } from '../harness/postgres.js';
import { type ManagedProcess, startProcess } from '../harness/process.js';
import { connectAsHub } from '../security/support.js';
import { monotonicUs, type ProfileSummary, type ProfileWindow, summariseProfile } from './cpu-profile.js';
import { lanes, type Percentiles, percentiles, procStats, treeCpuTicks } from './report.js';
import type { SimAgentSpec, SimReply, SimRequest, TamperTarget } from './sim-protocol.js';

const WORKER = join(ROOT, 'e2e', 'src', 'sim', 'agent-worker.ts');
/** Status reports each agent queues at once to measure the hub's ingest capacity. */
const FLOOD_PER_AGENT = 10;

/** The object every simulated cluster has changed behind its agent's back in the ingest burst. */
const TAMPER: TamperTarget = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  namespace: 'shop',
  name: 'web-config',
  key: 'LOG_LEVEL',
};

export interface FleetBenchOptions {
  clusters: number;
  /** Commits, each changing every environment; default 3. */
  rounds?: number;
  /** Hub replicas; more than one runs on PostgreSQL. Default 1. */
  replicas?: number;
  /** Default pglite for one replica, postgres (a private server) for more. */
  database?: 'pglite' | 'postgres';
  /** Environments the clusters are spread over; default one per 100 clusters, at least 2. */
  environments?: number;
  /** Agent processes; default 2, one per core here. */
  workers?: number;
  /** Delay before a simulated workload turns healthy; default 0. */
  readyDelayMs?: number;
  /**
   * Where every hub replica (and the agent processes) write `.cpuprofile` files
   * (`node --cpu-prof`); none by default. The killed hub writes none: its restarted
   * process profiles the rest.
   */
  profileDir?: string;
  /**
   * Targeting: every other cluster is labelled `tier=prod` and runs a fleet-wide app
   * (`apps/monitoring`, selected by label) beside its environment's content, which each round
   * changes too; every fourth is labelled `gpu=true` and renders its environment's gpu group.
   */
  apps?: boolean;
  /**
   * Where the simulated agents keep their state dirs (outbox, bundle, identity). Default: a
   * temp dir on tmpfs (`/dev/shm`) where the machine has one. Each real agent fsyncs its
   * outbox on its own cluster's disk; a thousand of them fsyncing on this one disk (about 4 ms
   * each here, blocking the worker that hosts 500 agents) would measure the disk, not Flotilla.
   * `'disk'` keeps them under the fleet's temp dir.
   */
  agentState?: 'tmpfs' | 'disk';
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

export interface ProcessRound {
  rssMiB: number;
  cpuS: number;
}

export interface FleetBenchResult {
  clusters: number;
  replicas: number;
  database: 'pglite' | 'postgres';
  environments: number;
  workers: number;
  /** Where the agents' state dirs were: tmpfs or this machine's disk. */
  agentState: 'tmpfs' | 'disk';
  rounds: number;
  apps: boolean;
  setup: { registerMs: number; joinMs: number; firstConvergeMs: number };
  /** Commit → every cluster's new bundle published, per round. */
  publishMs: Percentiles;
  /** Commit → every cluster Synced and Healthy at the hub, per round. */
  convergeMs: Percentiles;
  /** Commit → that cluster Synced and Healthy at the hub, every cluster of every round. */
  clusterConvergeMs: Percentiles;
  unchangedPassMs: Percentiles;
  /** Bundles published by the unchanged passes (0 when nothing is redone). */
  unchangedPublished: number;
  ingestPerSec: number;
  /**
   * Reports of the burst (drift and heal), over the time from the first sent to the last stored;
   * `heartbeats` sent meanwhile are not counted in the rate.
   */
  ingest: { reports: number; heartbeats: number; ms: number; edited: number };
  /** Full status reports queued by every agent at once, stored per second: what the hub alone can take. */
  ingestCapacityPerSec: number;
  ingestCapacity: {
    reports: number;
    ms: number;
    /** Of `ms`: until every report was in its outbox (the agents append them one by one). */
    appendMs: number;
    /** CPU of each part over the flood, µs a report (PostgreSQL's server with its backends). */
    cpuUsPerReport: { hub: number; postgres?: number; nats: number; agents: number };
  };
  fleetStatusMs: Percentiles;
  uiFleetMs: Percentiles;
  /** Peak over the rounds, and per round; for several replicas, CPU summed and RSS of the largest. */
  hubRssMiB: number;
  natsRssMiB: number;
  hubRounds: ProcessRound[];
  natsRounds: ProcessRound[];
  /** CPU s per round of PostgreSQL (every backend; none on PGlite) and of the agent processes together. */
  postgresCpuSPerRound: number[];
  agentsCpuSPerRound: number[];
  agentsRssMiB: number;
  /** SIGKILL of the hub → every agent connected again and reporting the current revision Synced and Healthy. */
  restartRecoveryMs: number;
  /** Of which: SIGKILL → the new hub process ready (listening, DB open). */
  restartHubReadyMs: number;
  /** Least poll period of the fleet status API while timing the first convergence and the restart recovery (4× an answer's time when longer). */
  pollMs: number;
  /** Per replica (`hub-0` is the one killed and restarted): its role in the rounds and CPU s per round. */
  replicaRounds: Array<{ name: string; leader: boolean; cpuS: number[] }>;
  /**
   * Each profiled process's main thread during the unchanged passes, from each commit to every
   * bundle published, and while the hub stores the queued status reports: every hub replica
   * (named `hub-0`, `hub-1`…, with its role) and, with `profileAgents`, each agent process.
   */
  profiles?: ProfiledProcess[];
}

/** One `.cpuprofile` of a bench:fleet run and what it says. */
export interface ProfiledProcess {
  /** `hub-0 (follower)`, `hub-1 (leader)`, `agents-0`… */
  name: string;
  pid: number;
  file: string;
  unchanged: ProfileSummary;
  changing: ProfileSummary;
  /** From each commit to every cluster Synced and Healthy (the rounds' whole span). */
  converging: ProfileSummary;
  ingest: ProfileSummary;
}

const ms = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e6;
const now = () => process.hrtime.bigint();
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

/** An agent process of the simulator: request, then wait for the reply of that kind. */
class SimWorker {
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private log = '';

  constructor(
    readonly index: number,
    nodeArgs: string[] = [],
  ) {
    this.child = fork(WORKER, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx', ...nodeArgs],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const keep = (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-16_000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  ask<K extends SimReply['op']>(request: SimRequest, op: K): Promise<Extract<SimReply, { op: K }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: SimReply) => {
        if (m.op !== op && m.op !== 'error') return;
        done();
        if (m.op === 'error') reject(new Error(`agent process ${this.index}: ${m.error}`));
        else resolve(m as Extract<SimReply, { op: K }>);
      };
      const onExit = (code: number | null) => {
        done();
        reject(new Error(`agent process ${this.index} exited (${code}) during ${request.op}:\n${this.log}`));
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
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.ask({ op: 'stop' }, 'stopped').catch(() => this.child.kill('SIGKILL'));
    await this.exited;
    clearTimeout(timer);
  }
}

/** The bench's repository: every environment the same small app, every bundle distinct by `${cluster.name}`. */
export function repoFiles(envs: string[], round: number, apps = false): Record<string, string> {
  const files: Record<string, string> = Object.assign(
    {},
    ...envs.map((e) => appFiles(e, { image: `nginx:1.27.${round}` })),
  );
  if (!apps) return files;
  // The gpu group: the same app with the gpu image, in a directory of its own.
  for (const e of envs)
    for (const [path, text] of Object.entries(appFiles(e, { image: `nginx-gpu:1.27.${round}` })))
      files[path.replace(`environments/${e}/`, `environments/${e}/targets/gpu/`)] = text;
  files['apps/monitoring/namespace.yaml'] = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n';
  files['apps/monitoring/agent.yaml'] = `apiVersion: v1
kind: ConfigMap
metadata: {name: node-agent, namespace: monitoring}
data: {cluster: "${'$'}{cluster.name}", round: "${round}"}
`;
  return files;
}

/** flotilla.yaml of the bench; with apps, each environment has a gpu group and the fleet a monitoring app. */
export function flotillaYaml(envs: string[], apps: boolean): string {
  const targets = apps
    ? '\n    targets: [{name: gpu, selector: {matchLabels: {gpu: "true"}}, path: targets/gpu}]'
    : '';
  return `environments:\n${envs.map((e) => `  - name: ${e}\n    path: environments/${e}${targets}`).join('\n')}\n${
    apps ? 'apps:\n  - name: monitoring\n    selector: {matchLabels: {tier: prod}}\n' : ''
  }`;
}

export interface Hub {
  process: ManagedProcess;
  http: string;
  grpc: string;
}

export async function runFleetBench(options: FleetBenchOptions): Promise<FleetBenchResult> {
  const say = options.progress ?? (() => {});
  const n = options.clusters;
  if (!(Number.isInteger(n) && n > 0))
    throw new Error(`--clusters: a positive integer is required, got ${n}`);
  const rounds = options.rounds ?? 3;
  const replicas = options.replicas ?? 1;
  const database = options.database ?? (replicas > 1 ? 'postgres' : 'pglite');
  if (replicas > 1 && database !== 'postgres')
    throw new Error('--replicas: more than one hub replica needs --database postgres');
  const envCount = options.environments ?? Math.max(2, Math.ceil(n / 100));
  const workerCount = Math.max(1, Math.min(options.workers ?? 2, n));
  const envs = Array.from({ length: envCount }, (_, i) => `env${i + 1}`);
  const names = Array.from({ length: n }, (_, i) => `c${String(i + 1).padStart(4, '0')}`);
  const indexOf = new Map(names.map((name, i) => [name, i]));
  const envOf = (i: number) => envs[i % envs.length]!;
  const apps = options.apps ?? false;
  const labelsOf = (i: number): Record<string, string> =>
    apps ? { tier: i % 2 === 0 ? 'prod' : 'test', ...(i % 4 === 0 ? { gpu: 'true' } : {}) } : {};

  let pg: PostgresServer | undefined;
  let fleet: Fleet | undefined;
  const extraHubs: Hub[] = [];
  const workers: SimWorker[] = [];
  const agentStateDir =
    options.agentState !== 'disk' && existsSync('/dev/shm')
      ? mkdtempSync(join('/dev/shm', 'flotilla-fleet-agents-'))
      : undefined;
  try {
    if (database === 'postgres') pg = await startPostgresServer();
    if (options.profileDir) mkdirSync(options.profileDir, { recursive: true });
    const profileArgs = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': flotillaYaml(envs, apps),
        ...repoFiles(envs, 0, apps),
      },
      clusters: [],
      startAgents: false,
      // Only the webhook moves the fleet, so every pass is one the benchmark asked for.
      poll: '1h',
      heartbeatWindow: '60s',
      ...(pg ? { database: pg.url } : {}),
      ...(options.profileDir ? { hubNodeArgs: profileArgs } : {}),
    });
    const f = fleet;
    const auth = { authorization: `Bearer ${f.adminToken}` };
    for (let r = 1; r < replicas; r++) extraHubs.push(await startReplica(f, r, pg!.url, profileArgs));
    const hubs = (): Hub[] => [f.hub, ...extraHubs];
    const bases = () => hubs().map((h) => h.http);

    // Register every cluster through the admin API (the CLI's own call), a few at a time.
    say(`registering ${n} clusters in ${envCount} environments`);
    let t = now();
    const specs: SimAgentSpec[] = [];
    await lanes(8, names, async (name, i) => {
      const res = await fetch(`${f.hub.http}/api/v1/clusters`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ name, environment: envOf(i), labels: labelsOf(i) }),
      });
      if (res.status !== 201)
        throw new Error(`cluster ${name}: add failed: HTTP ${res.status} ${await res.text()}`);
      const added = (await res.json()) as { token: string };
      const hub = hubs()[i % replicas]!;
      specs[i] = { name, hub: hub.grpc, token: added.token, caHash: f.hub.caHash };
    });
    const registerMs = ms(t);

    say(`joining and starting ${n} agents in ${workerCount} processes`);
    t = now();
    for (let w = 0; w < workerCount; w++) workers.push(new SimWorker(w, profileArgs));
    const workerPids = workers.map((w) => w.pid!);
    const started = await Promise.all(
      workers.map((w) =>
        w.ask(
          {
            op: 'start',
            agents: specs.filter((_, i) => i % workerCount === w.index),
            baseDir: agentStateDir ?? join(f.baseDir, 'agents'),
            readyDelayMs: options.readyDelayMs ?? 0,
            // The hub takes joins one by one anyway; more in flight only wait longer for it.
            concurrency: 4,
          },
          'started',
        ),
      ),
    );
    const failed = started.flatMap((s) => s.failed);
    if (failed.length > 0) {
      throw new Error(
        `${failed.length} agents failed to start: ${failed
          .slice(0, 5)
          .map((x) => `${x.name}: ${x.error}`)
          .join('; ')}`,
      );
    }
    const joinMs = ms(t);

    const fleetStatus = async (base = f.hub.http): Promise<FleetStatusRow[]> => {
      const res = await fetch(`${base}/api/v1/fleet/status`, { headers: auth });
      if (!res.ok) throw new Error(`GET /api/v1/fleet/status: HTTP ${res.status}`);
      return ((await res.json()) as { clusters: FleetStatusRow[] }).clusters;
    };
    const pollMs = 250;
    const timeoutMs = Math.max(180_000, n * 300);
    /**
     * Polls the fleet status until `done` holds for every cluster; returns when each first
     * did (ms since `from`). The poll waits for the previous answer, so at most one is in flight.
     */
    const waitAll = async (
      from: bigint,
      done: (row: FleetStatusRow) => boolean,
      what: string,
    ): Promise<Map<string, number>> => {
      const at = new Map<string, number>();
      let rows: FleetStatusRow[] = [];
      while (at.size < n) {
        if (ms(from) > timeoutMs) {
          const late = rows.filter((r) => !at.has(r.name)).slice(0, 3);
          throw new Error(
            `${what}: ${n - at.size} of ${n} clusters not there in ${timeoutMs} ms, e.g. ${JSON.stringify(late)}`,
          );
        }
        const tick = now();
        rows = await fleetStatus().catch(() => []);
        const took = ms(tick);
        const seen = ms(from);
        for (const r of rows) if (!at.has(r.name) && done(r)) at.set(r.name, seen);
        // At a thousand clusters one answer takes seconds: keep the hub's time spent on this
        // poll to a fifth, or it slows down what is measured.
        if (at.size < n) await sleep(Math.max(pollMs, 4 * took));
      }
      return at;
    };
    const convergedAt = (revision: string) => (r: FleetStatusRow) =>
      r.revision === revision && r.sync === 'Synced' && r.health === 'Healthy' && r.connected;

    let revision = (await f.work.git('rev-parse', 'HEAD')).trim();
    say('waiting for the first convergence');
    t = now();
    await waitAll(t, convergedAt(revision), 'first convergence');
    const firstConvergeMs = ms(t);
    say(
      `converged: registered in ${registerMs.toFixed(0)} ms, joined in ${joinMs.toFixed(0)} ms, first bundles applied ${firstConvergeMs.toFixed(0)} ms later`,
    );

    // Restart first: with a profile, the killed hub writes none, and the new one profiles the rest.
    say('killing the hub (SIGKILL) and starting it again');
    const killed = Date.now();
    t = now();
    f.hub.process.kill('SIGKILL');
    await f.hub.process.exited;
    await f.startHub();
    const hubReadyMs = ms(t);
    const restartRecovery = await waitAll(
      t,
      (r) => convergedAt(revision)(r) && !!r.lastSeen && Date.parse(r.lastSeen) > killed,
      'reconnect after restart',
    );
    const restartRecoveryMs = Math.max(...restartRecovery.values());
    say(
      `every agent back with current status ${restartRecoveryMs.toFixed(0)} ms after the SIGKILL (hub ready after ${hubReadyMs.toFixed(0)} ms)`,
    );

    const pids = { hubs: hubs().map((h) => h.process.pid!), nats: f.nats.process.pid! };
    /** Every replica: CPU summed, RSS of the largest (each replica has its own memory limit), and each one's CPU. */
    const hubStats = () => {
      const all = pids.hubs.map(procStats);
      return {
        rssKiB: Math.max(...all.map((x) => x.rssKiB)),
        cpuTicks: all.reduce((a, x) => a + x.cpuTicks, 0),
        each: all.map((x) => x.cpuTicks),
      };
    };
    // Which replica leads the rounds (after the restart, hub-0 is usually a follower).
    const leaders = await Promise.all(
      hubs().map(async (h) => {
        const health = (await (await fetch(`${h.http}/healthz`)).json()) as { leader?: boolean };
        return health.leader === true;
      }),
    );
    const dbTicks = () => (pg?.process.pid ? treeCpuTicks(pg.process.pid) : 0);
    const agentTicks = () => workerPids.reduce((a, pid) => a + procStats(pid).cpuTicks, 0);
    const postgresCpuSPerRound: number[] = [];
    const agentsCpuSPerRound: number[] = [];
    const replicaRounds = hubs().map((_, i) => ({
      name: `hub-${i}`,
      leader: leaders[i]!,
      cpuS: [] as number[],
    }));
    // Publication is seen where agents see it: the hub's notify message after each bundle.
    // Watching NATS costs the hub nothing, where polling its API would slow what is measured.
    const nc = await connectAsHub(f);
    const notified = new Map<string, bigint>();
    const notifications = nc.subscribe('notify.*', {
      callback: (_err, m) => {
        const cluster = m.subject.slice('notify.'.length);
        if (!notified.has(cluster)) notified.set(cluster, now());
      },
    });
    const publishes: number[] = [];
    const converges: number[] = [];
    const perCluster: number[] = [];
    const hubRounds: ProcessRound[] = [];
    const natsRounds: ProcessRound[] = [];
    const changing: ProfileWindow[] = [];
    const converging: ProfileWindow[] = [];
    let hubPeak = 0;
    let natsPeak = 0;
    for (let round = 1; round <= rounds; round++) {
      const hub0 = hubStats();
      const nats0 = procStats(pids.nats);
      const db0 = dbTicks();
      const agents0 = agentTicks();
      await nc.flush();
      notified.clear();
      const fromUs = monotonicUs();
      const start = now();
      const startedAt = Date.now();
      revision = await f.work.commit(repoFiles(envs, round, apps), `bench: round ${round}`);
      await Promise.all(workers.map((w) => w.ask({ op: 'expect', revision }, 'armed')));
      await f.poke();
      let publishMs = Number.NaN;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          hubPeak = Math.max(hubPeak, hubStats().rssKiB);
          natsPeak = Math.max(natsPeak, procStats(pids.nats).rssKiB);
          if (Number.isNaN(publishMs) && notified.size >= n) {
            publishMs = Number(Math.max(...[...notified.values()].map((x) => Number(x - start)))) / 1e6;
            changing.push({ fromUs, toUs: fromUs + Math.round(publishMs * 1000) });
          }
          await sleep(25);
        }
      })();
      // Timed at the agents, which costs the hub nothing (polling its fleet view would load
      // what is measured): when the hub acknowledged each agent's first Synced and Healthy
      // report at the revision, that is, stored it.
      const replies = await Promise.all(workers.map((w) => w.ask({ op: 'await', timeoutMs }, 'converged')));
      sampling = false;
      await sampler;
      const missing = replies.flatMap((x) => x.missing);
      if (missing.length > 0) {
        throw new Error(
          `round ${round}: ${missing.length} clusters not Synced and Healthy at ${revision} within ${timeoutMs} ms, e.g. ${missing.slice(0, 5).join(', ')}`,
        );
      }
      const at = replies.flatMap((x) => Object.values(x.at).map((t) => t - startedAt));
      const convergeMs = Math.max(...at);
      if (replicas > 1) {
        // Clusters by the replica their agent streams to (joined through hub i % replicas): when
        // each converged, and how long after its bundle was announced.
        const byHub = hubs().map(() => ({ converged: [] as number[], lag: [] as number[] }));
        for (const reply of replies)
          for (const [name, t] of Object.entries(reply.at)) {
            const h = byHub[indexOf.get(name)! % replicas]!;
            h.converged.push(t - startedAt);
            const seen = notified.get(name);
            if (seen !== undefined) h.lag.push(t - startedAt - Number(seen - start) / 1e6);
          }
        say(
          `round ${round}: ${byHub
            .map((h, i) => {
              const c = percentiles(h.converged);
              const l = percentiles(h.lag);
              return `hub-${i}'s agents converged p50 ${c.p50.toFixed(0)} max ${c.max.toFixed(0)} ms, ${l.p50.toFixed(0)} / ${l.max.toFixed(0)} ms after their bundle`;
            })
            .join('; ')}`,
        );
      }
      converging.push({ fromUs, toUs: fromUs + Math.round(convergeMs * 1000) });
      // The hub's own view agrees: every cluster Synced and Healthy at the revision.
      await waitAll(start, convergedAt(revision), `round ${round}: fleet status`);
      if (Number.isNaN(publishMs)) {
        throw new Error(
          `round ${round}: converged, but only ${notified.size} of ${n} bundles were announced on notify.*`,
        );
      }
      publishes.push(publishMs);
      converges.push(convergeMs);
      perCluster.push(...at);
      const hub1 = hubStats();
      const nats1 = procStats(pids.nats);
      hubRounds.push({ rssMiB: hub1.rssKiB / 1024, cpuS: (hub1.cpuTicks - hub0.cpuTicks) / 100 });
      for (const [i, r] of replicaRounds.entries()) r.cpuS.push((hub1.each[i]! - hub0.each[i]!) / 100);
      postgresCpuSPerRound.push((dbTicks() - db0) / 100);
      agentsCpuSPerRound.push((agentTicks() - agents0) / 100);
      natsRounds.push({ rssMiB: nats1.rssKiB / 1024, cpuS: (nats1.cpuTicks - nats0.cpuTicks) / 100 });
      const each =
        replicaRounds.length > 1
          ? ` (${replicaRounds.map((r) => `${r.name}${r.leader ? ' leader' : ''} ${r.cpuS.at(-1)!.toFixed(1)}`).join(', ')})`
          : '';
      say(
        `round ${round}/${rounds}: published ${publishMs.toFixed(0)} ms, all Synced and Healthy ${convergeMs.toFixed(0)} ms; hub ${hubRounds.at(-1)!.cpuS.toFixed(1)} CPU s${each}, ${hubRounds.at(-1)!.rssMiB.toFixed(0)} MiB; nats-server ${natsRounds.at(-1)!.cpuS.toFixed(1)}, PostgreSQL ${postgresCpuSPerRound.at(-1)!.toFixed(1)}, agents ${agentsCpuSPerRound.at(-1)!.toFixed(1)} CPU s`,
      );
    }
    notifications.unsubscribe();
    await nc.close();

    say('unchanged passes');
    const unchanged: number[] = [];
    const unchangedWindows: ProfileWindow[] = [];
    let unchangedPublished = 0;
    // The leader runs passes; a follower would only hand the request on.
    let leader = f.hub.http;
    for (const base of bases()) {
      const health = (await (await fetch(`${base}/healthz`)).json()) as { leader?: boolean };
      if (health.leader) leader = base;
    }
    for (let i = 0; i < 3; i++) {
      const fromUs = monotonicUs();
      const start = now();
      const res = await fetch(`${leader}/api/v1/publish-loop/run`, { method: 'POST', headers: auth });
      if (!res.ok) throw new Error(`POST /api/v1/publish-loop/run: HTTP ${res.status} ${await res.text()}`);
      const pass = (await res.json()) as { error: string | null; clusters: { published?: boolean }[] };
      unchanged.push(ms(start));
      unchangedWindows.push({ fromUs, toUs: monotonicUs() });
      if (pass.error) throw new Error(`unchanged pass failed: ${pass.error}`);
      unchangedPublished += pass.clusters.filter((c) => c.published).length;
    }

    say('ingest burst: one object changed in every simulated cluster at once');
    // Timed at the agents, which costs the hub nothing: from the first report appended to an
    // outbox to the moment every outbox is empty again, as the hub acknowledges each report
    // only once it is stored.
    const value = `tampered-${Date.now()}`;
    const bursts = await Promise.all(
      workers.map((w) => w.ask({ op: 'burst', target: TAMPER, value, timeoutMs }, 'burst')),
    );
    const edited = bursts.reduce((a, x) => a + x.edited, 0);
    const silent = bursts.reduce((a, x) => a + x.result.silent, 0);
    if (silent > 0) throw new Error(`ingest burst: ${silent} agents reported nothing within ${timeoutMs} ms`);
    const unhealed = bursts.reduce((a, x) => a + x.result.unhealed, 0);
    if (unhealed > 0)
      throw new Error(
        `ingest burst: ${unhealed} agents did not report the drift and then the heal within ${timeoutMs} ms`,
      );
    const ingestReports = bursts.reduce((a, x) => a + x.result.reports, 0);
    const ingestHeartbeats = bursts.reduce((a, x) => a + x.result.heartbeats, 0);
    // An outbox never empty within the timeout leaves drainedAt before its first append: no rate then.
    const drained = bursts.every((x) => x.result.drainedAt >= x.result.firstAppendAt);
    const ingestMs = !drained
      ? Number.NaN
      : Math.max(
          1,
          Math.max(...bursts.map((x) => x.result.drainedAt)) -
            Math.min(...bursts.map((x) => x.result.firstAppendAt)),
        );
    const ingestPerSec = (ingestReports / ingestMs) * 1000;
    // The rate counts only if every cluster's drift did arrive: the hub's drift history says.
    const driftRes = await fetch(`${f.hub.http}/api/v1/fleet/drift?history=1`, { headers: auth });
    const driftRows = (
      (await driftRes.json()) as { drift: { cluster: string; name: string; live: string }[] }
    ).drift;
    const drifted = new Set(
      driftRows.filter((d) => d.name === TAMPER.name && d.live.includes(value)).map((d) => d.cluster),
    );
    if (drifted.size !== edited) {
      throw new Error(
        `ingest burst: ${edited} clusters drifted but the hub holds the drift of ${drifted.size}`,
      );
    }

    say(`ingest capacity: ${FLOOD_PER_AGENT} full status reports queued by every agent at once`);
    // The drift burst is paced by the agents (watch, drift check, heal); this is paced by the
    // hub alone: the reports are already queued, and an outbox empties as the hub stores them.
    const floodFromUs = monotonicUs();
    const floodCpu0 = {
      hub: hubStats().cpuTicks,
      nats: procStats(pids.nats).cpuTicks,
      db: pg?.process.pid ? treeCpuTicks(pg.process.pid) : 0,
    };
    const floods = await Promise.all(
      workers.map((w) =>
        w.ask(
          {
            op: 'flood',
            perAgent: FLOOD_PER_AGENT,
            timeoutMs,
          },
          'flooded',
        ),
      ),
    );
    const floodWindow: ProfileWindow = { fromUs: floodFromUs, toUs: monotonicUs() };
    const undrained = floods.reduce((a, x) => a + x.result.silent, 0);
    if (undrained > 0)
      throw new Error(`ingest capacity: ${undrained} outboxes not empty after ${timeoutMs} ms`);
    const floodReports = floods.reduce((a, x) => a + x.result.reports, 0);
    const floodStart = Math.min(...floods.map((x) => x.result.firstAppendAt));
    const floodMs = Math.max(1, Math.max(...floods.map((x) => x.result.drainedAt)) - floodStart);
    /** CPU µs a report: 10 ms clock ticks, or ms. */
    const perReport = (ms: number) => Math.round((ms * 1000) / floodReports);
    const floodCpu: FleetBenchResult['ingestCapacity']['cpuUsPerReport'] = {
      hub: perReport((hubStats().cpuTicks - floodCpu0.hub) * 10),
      agents: perReport(floods.reduce((a, x) => a + x.cpuMs, 0)),
      nats: perReport((procStats(pids.nats).cpuTicks - floodCpu0.nats) * 10),
      ...(pg?.process.pid ? { postgres: perReport((treeCpuTicks(pg.process.pid) - floodCpu0.db) * 10) } : {}),
    };
    const appendMs = Math.max(...floods.map((x) => x.appendedAt)) - floodStart;

    say('fleet status API and dashboard');
    const fleetStatusTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = now();
      const rows = await fleetStatus();
      fleetStatusTimes.push(ms(start));
      if (rows.length !== n) throw new Error(`fleet status listed ${rows.length} clusters, not ${n}`);
    }
    const login = await fetch(`${f.hub.http}/ui/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: f.adminToken }).toString(),
      redirect: 'manual',
    });
    const cookie = login.headers.get('set-cookie')?.split(';')[0];
    if (!cookie) throw new Error(`POST /ui/login: no session cookie (HTTP ${login.status})`);
    const uiTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = now();
      const res = await fetch(`${f.hub.http}/ui`, { headers: { cookie } });
      const page = await res.text();
      uiTimes.push(ms(start));
      // The fleet page shows one page of clusters (in name order) under the fleet's count.
      const shown = page.includes(`Fleet: ${n} cluster`) && page.includes([...names].sort()[0]!);
      if (!res.ok || !shown)
        throw new Error(`GET /ui: HTTP ${res.status}, the fleet of ${n} clusters not shown`);
    }

    const agentStats = await Promise.all(workers.map((w) => w.ask({ op: 'stats' }, 'stats')));
    const agentsRssMiB = agentStats.reduce((a, s) => a + s.rssKiB, 0) / 1024;

    say('stopping');
    const before = new Set(options.profileDir ? readdirSync(options.profileDir) : []);
    for (const w of workers.splice(0)) await w.stop();
    let profiles: ProfiledProcess[] | undefined;
    if (options.profileDir) {
      const dir = options.profileDir;
      // A clean exit writes the profile; a big one takes a while.
      await Promise.all(hubs().map((h) => h.process.stop(120_000)));
      const named = new Map<number, string>([
        ...pids.hubs.map((pid, i): [number, string] => [
          pid,
          `hub-${i} (${replicas > 1 ? (leaders[i] ? 'leader' : 'follower') : 'the hub'})`,
        ]),
        ...workerPids.map((pid, i): [number, string] => [pid, `agents-${i}`]),
      ]);
      const windows = { unchanged: unchangedWindows, changing, converging, ingest: [floodWindow] };
      profiles = [];
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread.
      for (const file of readdirSync(dir).sort()) {
        const parts = file.split('.');
        const pid = Number(parts[3]);
        if (!file.endsWith('.cpuprofile') || before.has(file) || parts[4] !== '0' || !named.has(pid))
          continue;
        const path = join(dir, file);
        writeFileSync(`${path}.windows.json`, JSON.stringify({ name: named.get(pid), ...windows }));
        const under = ['hub/src/', 'hub/dist/', 'agent/src/', 'e2e/src/sim/', 'shared/src/'];
        profiles.push({
          name: named.get(pid)!,
          pid,
          file: path,
          unchanged: summariseProfile(path, unchangedWindows, ROOT, { under }),
          changing: summariseProfile(path, changing, ROOT, { under }),
          converging: summariseProfile(path, converging, ROOT, { under }),
          ingest: summariseProfile(path, [floodWindow], ROOT, { under }),
        });
      }
    }

    const rss = (xs: ProcessRound[]) => Math.round(Math.max(...xs.map((x) => x.rssMiB)));
    return {
      clusters: n,
      replicas,
      database,
      environments: envCount,
      apps,
      workers: workerCount,
      agentState: agentStateDir ? 'tmpfs' : 'disk',
      rounds,
      setup: {
        registerMs: Math.round(registerMs),
        joinMs: Math.round(joinMs),
        firstConvergeMs: Math.round(firstConvergeMs),
      },
      publishMs: percentiles(publishes),
      convergeMs: percentiles(converges),
      clusterConvergeMs: percentiles(perCluster),
      unchangedPassMs: percentiles(unchanged),
      unchangedPublished,
      ingestPerSec: Math.round(ingestPerSec),
      ingest: {
        reports: ingestReports,
        heartbeats: ingestHeartbeats,
        ms: Math.round(ingestMs),
        edited,
      },
      ingestCapacityPerSec: Math.round((floodReports / floodMs) * 1000),
      ingestCapacity: { reports: floodReports, ms: Math.round(floodMs), appendMs, cpuUsPerReport: floodCpu },
      fleetStatusMs: percentiles(fleetStatusTimes),
      uiFleetMs: percentiles(uiTimes),
      hubRssMiB: Math.max(rss(hubRounds), Math.round(hubPeak / 1024)),
      natsRssMiB: Math.max(rss(natsRounds), Math.round(natsPeak / 1024)),
      hubRounds,
      natsRounds,
      agentsRssMiB: Math.round(agentsRssMiB),
      restartRecoveryMs: Math.round(restartRecoveryMs),
      restartHubReadyMs: Math.round(hubReadyMs),
      pollMs,
      replicaRounds,
      postgresCpuSPerRound,
      agentsCpuSPerRound,
      ...(profiles ? { profiles } : {}),
    };
  } finally {
    for (const w of workers) await w.stop().catch(() => undefined);
    for (const h of extraHubs) await h.process.stop().catch(() => undefined);
    await fleet?.stop();
    await pg?.destroy();
    if (agentStateDir) rmSync(agentStateDir, { recursive: true, force: true });
  }
}

/**
 * Another hub replica: the same data dir (as a shared volume gives them), a git cache of its
 * own. `nodeArgs` (e.g. `--cpu-prof`) run it on node with those flags.
 */
export async function startReplica(
  f: Fleet,
  index: number,
  database: string,
  nodeArgs: string[] = [],
): Promise<Hub> {
  const readyFile = join(f.baseDir, `hub-${index}-ready.json`);
  rmSync(readyFile, { force: true });
  const process = await startProcess(
    nodeArgs.length > 0 ? globalThis.process.execPath : bin('flotilla'),
    [
      ...(nodeArgs.length > 0 ? [...nodeArgs, bin('flotilla')] : []),
      'hub',
      'start',
      '--data-dir',
      f.hubDataDir,
      '--cache-dir',
      join(f.baseDir, `hub-${index}-cache`),
      '--nats',
      f.nats.url,
      '--repo',
      f.repoUrl,
      '--database',
      database,
      '--http',
      '127.0.0.1:0',
      '--grpc',
      '127.0.0.1:0',
      '--poll',
      '1h',
      '--heartbeat-window',
      '60s',
      '--ready-file',
      readyFile,
    ],
    { name: `hub-${index}`, ready: /hub ready/, timeoutMs: 60_000 },
  );
  if (!existsSync(readyFile)) throw new Error(`hub replica ${index}: no ready file ${readyFile}`);
  const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as { http: string; grpc: string };
  return { process, http: ready.http, grpc: ready.grpc };
}
