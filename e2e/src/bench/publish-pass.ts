/**
 * The machinery of `npm run bench:publish`: the hub's publish pass alone, at fleet size. A
 * real hub (one or more replicas, as processes of their own), a real nats-server, a git
 * server and PostgreSQL; N clusters registered through the admin API and never joined, so
 * the hub's only work is to render, sign, store and publish a bundle per cluster. Each round
 * commits a change to every environment (every cluster's bundle distinct through
 * `${cluster.name}`), fires the webhook, and times until every cluster's new bundle is
 * announced on NATS (`notify.<cluster>`, sent after its chunks and head are in JetStream),
 * which is where agents see it.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../fleet/cli.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { type PostgresServer, startPostgresServer } from '../harness/postgres.js';
import { connectAsHub } from '../security/support.js';
import { monotonicUs, type ProfileSummary, type ProfileWindow, summariseProfile } from './cpu-profile.js';
import { flotillaYaml, type Hub, repoFiles, startReplica } from './fleet-sim.js';
import { lanes, type Percentiles, percentiles, procStats, treeCpuTicks } from './report.js';

export interface PublishBenchOptions {
  clusters: number;
  /** Commits, each changing every environment; default 3. */
  rounds?: number;
  /** Hub replicas sharing each pass's work; default 1. */
  replicas?: number;
  /** Default postgres (a private server); pglite only with one replica. */
  database?: 'pglite' | 'postgres';
  /** Environments the clusters are spread over; default one per 100 clusters, at least 2. */
  environments?: number;
  /** Where every hub replica writes its `.cpuprofile` (`node --cpu-prof`); none by default. */
  profileDir?: string;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

/** One round: a commit that changes every environment, through to every new bundle announced. */
export interface PublishRound {
  /** Commit (pushed) → every cluster's new bundle announced on NATS. */
  publishMs: number;
  /** Webhook sent → every cluster's new bundle announced: the pass itself. */
  passMs: number;
  /** CPU seconds from the webhook to the last announcement: every replica summed, then each. */
  hubCpuS: number;
  hubCpuSByReplica: number[];
  natsCpuS: number;
  /** PostgreSQL's server and backends. */
  dbCpuS?: number;
  /** 1-minute load average before the commit and after the last announcement. */
  load: [number, number];
}

export interface PublishBenchResult {
  clusters: number;
  replicas: number;
  database: 'pglite' | 'postgres';
  environments: number;
  /** Registering every cluster through the admin API, then a pass that gives each its first bundle. */
  setup: { registerMs: number; firstPassMs: number };
  rounds: PublishRound[];
  publishMs: Percentiles;
  passMs: Percentiles;
  /** Hub CPU (every replica summed) from the webhook to the last announcement, per round. */
  hubCpuMs: Percentiles;
  /** A pass over the commit just published: it should find nothing to do. */
  unchangedPassMs: Percentiles;
  unchangedPublished: number;
  /** Largest RSS of any replica, sampled after each round. */
  hubRssMiB: number;
  /** Per replica, where its thread spent each round's pass (webhook → last announcement). */
  profiles?: Array<{ file: string; changing: ProfileSummary; unchanged: ProfileSummary }>;
}

const now = () => process.hrtime.bigint();
const ms = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e6;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

export async function runPublishBench(options: PublishBenchOptions): Promise<PublishBenchResult> {
  const say = options.progress ?? (() => {});
  const n = options.clusters;
  if (!(Number.isInteger(n) && n > 0))
    throw new Error(`--clusters: a positive integer is required, got ${n}`);
  const roundCount = options.rounds ?? 3;
  const replicas = options.replicas ?? 1;
  const database = options.database ?? 'postgres';
  if (replicas > 1 && database !== 'postgres')
    throw new Error('--replicas: more than one hub replica needs --database postgres');
  const envCount = options.environments ?? Math.max(2, Math.ceil(n / 100));
  const envs = Array.from({ length: envCount }, (_, i) => `env${i + 1}`);
  const names = Array.from({ length: n }, (_, i) => `c${String(i + 1).padStart(4, '0')}`);
  const nodeArgs = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
  const timeoutMs = Math.max(120_000, n * 200);

  let pg: PostgresServer | undefined;
  let fleet: Fleet | undefined;
  const extraHubs: Hub[] = [];
  try {
    if (database === 'postgres') pg = await startPostgresServer();
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': flotillaYaml(envs, false), ...repoFiles(envs, 0) },
      clusters: [],
      startAgents: false,
      // Only the webhook and the benchmark's own requests start passes.
      poll: '1h',
      ...(pg ? { database: pg.url } : {}),
      ...(nodeArgs.length > 0 ? { hubNodeArgs: nodeArgs } : {}),
    });
    const f = fleet;
    const auth = { authorization: `Bearer ${f.adminToken}` };
    for (let r = 1; r < replicas; r++) extraHubs.push(await startReplica(f, r, pg!.url, nodeArgs));
    const hubs = (): Hub[] => [f.hub, ...extraHubs];

    // Every announcement, as an agent would see it: generation per cluster, and when.
    const nc = await connectAsHub(f);
    let announced: Array<{ cluster: string; generation: number; at: bigint }> = [];
    nc.subscribe('notify.*', {
      callback: (_err, m) => {
        const { generation } = JSON.parse(new TextDecoder().decode(m.data)) as { generation: number };
        announced.push({ cluster: m.subject.slice('notify.'.length), generation, at: now() });
      },
    });

    say(`registering ${n} clusters in ${envCount} environments through the admin API`);
    let t = now();
    await lanes(8, names, async (name, i) => {
      const res = await fetch(`${f.hub.http}/api/v1/clusters`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ name, environment: envs[i % envs.length] }),
      });
      if (res.status !== 201)
        throw new Error(`cluster ${name}: add failed: HTTP ${res.status} ${await res.text()}`);
    });
    const registerMs = ms(t);

    let leader = f.hub.http;
    for (const h of hubs()) {
      const health = (await (await fetch(`${h.http}/healthz`)).json()) as { leader?: boolean };
      if (health.leader) leader = h.http;
    }
    /** A pass run now on the leader (after the one running, if any); its outcome per cluster. */
    const runPass = async () => {
      const res = await fetch(`${leader}/api/v1/publish-loop/run`, { method: 'POST', headers: auth });
      if (!res.ok) throw new Error(`POST /api/v1/publish-loop/run: HTTP ${res.status} ${await res.text()}`);
      const pass = (await res.json()) as {
        error: string | null;
        clusters: Array<{ cluster: string; published?: boolean; generation?: number; error?: string }>;
      };
      if (pass.error) throw new Error(`publish pass failed: ${pass.error}`);
      const failed = pass.clusters.filter((c) => c.error);
      if (failed.length > 0)
        throw new Error(
          `publish pass: ${failed.length} clusters failed, e.g. ${failed[0]!.cluster}: ${failed[0]!.error}`,
        );
      return pass.clusters;
    };

    say('a pass that gives every cluster its first bundle');
    t = now();
    const first = await runPass();
    const firstPassMs = ms(t);
    const generation = new Map(first.map((c) => [c.cluster, c.generation ?? 0]));
    const without = names.filter((c) => !generation.get(c));
    if (without.length > 0)
      throw new Error(`${without.length} clusters have no bundle after the first pass, e.g. ${without[0]}`);

    const pids = hubs().map((h) => h.process.pid!);
    const natsPid = f.nats.process.pid!;
    const dbTicks = () => (pg?.process.pid ? treeCpuTicks(pg.process.pid) : 0);
    const rounds: PublishRound[] = [];
    const changing: ProfileWindow[] = [];
    let hubPeakKiB = 0;
    for (let round = 1; round <= roundCount; round++) {
      await sleep(200);
      await nc.flush();
      announced = [];
      const load0 = loadavg()[0]!;
      const start = now();
      const revision = await f.work.commit(repoFiles(envs, round), `bench: round ${round}`);
      const hub0 = pids.map((p) => procStats(p).cpuTicks);
      const nats0 = procStats(natsPid).cpuTicks;
      const db0 = dbTicks();
      const fromUs = monotonicUs();
      const webhook = now();
      await f.poke();
      const seen = new Set<string>();
      for (let i = 0; seen.size < n; ) {
        for (; i < announced.length; i++) seen.add(announced[i]!.cluster);
        if (ms(webhook) > timeoutMs)
          throw new Error(
            `round ${round}: ${n - seen.size} of ${n} new bundles not announced within ${timeoutMs} ms`,
          );
        if (seen.size < n) await sleep(5);
      }
      const last = announced.reduce((a, x) => (x.at > a ? x.at : a), 0n);
      const hub1 = pids.map((p) => procStats(p).cpuTicks);
      const nats1 = procStats(natsPid).cpuTicks;
      const db1 = dbTicks();
      const toUs = monotonicUs();
      const load1 = loadavg()[0]!;
      changing.push({ fromUs, toUs });
      // The pass's tail (its last batch's bookkeeping) ends before this one starts.
      await runPass();
      await nc.flush();
      // One generation per content change, each bundle announced once.
      const counts = new Map<string, number>();
      for (const a of announced) {
        counts.set(a.cluster, (counts.get(a.cluster) ?? 0) + 1);
        const want = generation.get(a.cluster)! + 1;
        if (a.generation !== want)
          throw new Error(
            `round ${round}: cluster ${a.cluster} announced generation ${a.generation}, expected ${want}`,
          );
      }
      const twice = [...counts].filter(([, k]) => k > 1);
      if (twice.length > 0)
        throw new Error(
          `round ${round}: ${twice.length} bundles announced more than once, e.g. ${twice[0]![0]} ${twice[0]![1]} times`,
        );
      for (const c of names) generation.set(c, generation.get(c)! + 1);
      const byReplica = hub1.map((x, i) => (x - hub0[i]!) / 100);
      rounds.push({
        publishMs: Number(last - start) / 1e6,
        passMs: Number(last - webhook) / 1e6,
        hubCpuS: byReplica.reduce((a, x) => a + x, 0),
        hubCpuSByReplica: byReplica,
        natsCpuS: (nats1 - nats0) / 100,
        ...(pg ? { dbCpuS: (db1 - db0) / 100 } : {}),
        load: [load0, load1],
      });
      hubPeakKiB = Math.max(hubPeakKiB, ...pids.map((p) => procStats(p).rssKiB));
      const r = rounds.at(-1)!;
      say(
        `round ${round}/${roundCount} (${revision.slice(0, 8)}): every bundle published ${r.publishMs.toFixed(0)} ms after the commit, ${r.passMs.toFixed(0)} ms after the webhook; hub CPU ${r.hubCpuS.toFixed(2)} s${replicas > 1 ? ` (${byReplica.map((x) => x.toFixed(2)).join(' + ')})` : ''}, load ${load0.toFixed(1)} → ${load1.toFixed(1)}`,
      );
    }

    say('unchanged passes');
    const unchanged: number[] = [];
    const unchangedWindows: ProfileWindow[] = [];
    announced = [];
    for (let i = 0; i < 3; i++) {
      const fromUs = monotonicUs();
      t = now();
      await runPass();
      unchanged.push(ms(t));
      unchangedWindows.push({ fromUs, toUs: monotonicUs() });
    }
    await nc.flush();
    const unchangedPublished = announced.length;
    await nc.close();

    let profiles: PublishBenchResult['profiles'];
    if (options.profileDir) {
      const dir = options.profileDir;
      // A clean exit writes the profile; a big one takes a while.
      for (const h of hubs()) await h.process.stop(120_000);
      profiles = [];
      for (const pid of pids) {
        // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread.
        const file = readdirSync(dir).find(
          (x) => x.endsWith('.cpuprofile') && x.split('.')[3] === String(pid) && x.split('.')[4] === '0',
        );
        if (!file) continue;
        const path = join(dir, file);
        writeFileSync(`${path}.windows.json`, JSON.stringify({ changing, unchanged: unchangedWindows }));
        profiles.push({
          file: path,
          changing: summariseProfile(path, changing, ROOT),
          unchanged: summariseProfile(path, unchangedWindows, ROOT),
        });
      }
    }

    return {
      clusters: n,
      replicas,
      database,
      environments: envCount,
      setup: { registerMs: Math.round(registerMs), firstPassMs: Math.round(firstPassMs) },
      rounds,
      publishMs: percentiles(rounds.map((r) => r.publishMs)),
      passMs: percentiles(rounds.map((r) => r.passMs)),
      hubCpuMs: percentiles(rounds.map((r) => r.hubCpuS * 1000)),
      unchangedPassMs: percentiles(unchanged),
      unchangedPublished,
      hubRssMiB: Math.round(hubPeakKiB / 1024),
      ...(profiles ? { profiles } : {}),
    };
  } finally {
    for (const h of extraHubs) await h.process.stop().catch(() => undefined);
    await fleet?.stop();
    await pg?.destroy();
  }
}
