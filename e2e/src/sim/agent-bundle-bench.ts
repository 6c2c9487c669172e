/**
 * The agent's CPU per bundle, without the hub: K agents in this one process, each the agent
 * package's own pull (NATS direct get from a real nats-server, transport digests, gunzip), run
 * loop (signature, cluster, generation and content-digest checks, durable last-bundle file) and
 * reconciler (server-side apply with dry runs, inventory, health, the drift watch) over the
 * simulator's in-memory cluster, reporting into its durable outbox. Each round signs and
 * publishes one distinct bundle per agent (the fleet benchmark's four objects), notify held
 * back, then sends the notifies and measures this process's CPU until every agent has appended
 * its Synced and Healthy report of that revision. What it leaves out: the gRPC status stream and the hub's acks, the
 * join, and `run`'s wiring (the import watch of the last-bundle file).
 *
 *   node --import tsx e2e/src/sim/agent-bundle-bench.ts [--agents K] [--rounds R] [--profile FILE]
 *
 * The first round warms the JIT and is not counted. `--profile FILE` profiles the counted
 * rounds (V8's CPU profiler) and prints where their CPU went, the in-memory cluster's share
 * included. The machine is shared: CPU per bundle is the figure, not the wall time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Agent, createAgent, createBundleStore, createOutbox, startBundlePuller } from '@flotilla/agent';
import { createClusterReconciler } from '@flotilla/agent/reconcile';
import { Health, Phase } from '@flotilla/proto';
import {
  BUNDLE_STREAM,
  type Bundle,
  contentDigest,
  createLogger,
  DEFAULT_SYNC_POLICY,
  encodeEnvelope,
  generateSigningKey,
  type KubeObject,
  publishBundle,
  signBundle,
  trustedKeys,
} from '@flotilla/shared';
import { connect, RetentionPolicy, StorageType } from 'nats';
import { monotonicUs, type ProfileWindow, summariseProfile } from '../bench/cpu-profile.js';
import { eventually, startNatsServer } from '../harness/index.js';
import { createMemoryCluster } from './memory-cluster.js';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '6' },
    profile: { type: 'string' },
  },
});
const K = Number(values.agents);
const ROUNDS = Number(values.rounds);
if (!(K > 0 && ROUNDS > 1)) throw new Error('--agents ≥ 1 and --rounds ≥ 2 are required');

/** The fleet benchmark's bundle: the demo app (e2e/src/fleet/demo-repo.ts appFiles) as the hub renders it for one cluster. */
function objectsOf(cluster: string, round: number): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            containers: [
              {
                name: 'web',
                image: `nginx:1.27.${round}`,
                ports: [{ containerPort: 80 }],
                envFrom: [{ configMapRef: { name: 'web-config' } }],
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 80 }] },
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'web-config', namespace: 'shop' },
      data: { ENVIRONMENT: 'env1', CLUSTER: cluster, LOG_LEVEL: 'debug' },
    },
  ];
}

const logger = createLogger({ name: 'bench', level: 'silent' });
const key = generateSigningKey();
const keys = trustedKeys([{ keyId: key.keyId, publicKey: key.publicKey }]);
const base = mkdtempSync(
  join(
    process.env.FLOTILLA_BENCH_TMP ?? (process.platform === 'linux' ? '/dev/shm' : tmpdir()),
    'flotilla-agent-bench-',
  ),
);
const nats = await startNatsServer();
const nc = await connect({ servers: nats.url });
// The hub's BUNDLES stream (hub/src/nats/bus.ts): the latest message per subject, read by direct get.
await (await nc.jetstreamManager()).streams.add({
  name: BUNDLE_STREAM,
  subjects: ['bundles.>'],
  max_msgs_per_subject: 1,
  allow_direct: true,
  storage: StorageType.File,
  retention: RetentionPolicy.Limits,
});

let expected = '';
let remaining = 0;
let allConverged: () => void = () => {};
interface BenchAgent {
  agent: Agent;
  connected(): boolean;
  stop(): Promise<void>;
}
const agents: BenchAgent[] = [];
for (let i = 0; i < K; i++) {
  const name = `c${String(i).padStart(4, '0')}`;
  const dir = join(base, name);
  const outbox = createOutbox({ dir, logger });
  const cluster = createMemoryCluster();
  const reconciler = createClusterReconciler(cluster, { cluster: name, logger });
  const agent = createAgent({
    cluster: name,
    keys,
    reconciler,
    outbox,
    bundleStore: createBundleStore(dir),
    logger,
    heartbeatMs: 3_600_000,
  });
  let seen = '';
  outbox.onAppend((r) => {
    const b = r.body;
    if (b.case !== 'status' || !expected || seen === expected) return;
    if (
      b.value.revision === expected &&
      b.value.phase === Phase.SYNCED &&
      b.value.health === Health.HEALTHY
    ) {
      seen = expected;
      if (--remaining === 0) allConverged();
    }
  });
  const puller = startBundlePuller(
    { cluster: name, servers: [nats.url], logger, recheckMs: 0 },
    async (o) => {
      if (o.kind === 'bundle')
        await agent.offer(o.envelope, { origin: 'nats', generation: o.head.generation });
    },
  );
  agents.push({
    agent,
    connected: () => puller.connected(),
    async stop() {
      await agent.stop();
      await puller.stop();
      outbox.close();
      cluster.close();
    },
  });
}

// Every agent listens before the first bundle is there: one that connected later would pull it
// at connect, before the round is timed.
await eventually(
  () => {
    if (!agents.every((a) => a.connected())) throw new Error('not every agent is connected to NATS');
  },
  { timeoutMs: 60_000 },
);

const profiler = values.profile ? new Session() : undefined;
const windows: ProfileWindow[] = [];
const perBundle: number[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const revision = `rev-${round}`;
  const envelopes = agents.map((_, i) => {
    const cluster = `c${String(i).padStart(4, '0')}`;
    const objects = objectsOf(cluster, round);
    const bundle: Bundle = {
      cluster,
      environment: 'env1',
      generation: round,
      revision,
      source: { url: 'http://git.example/fleet.git', branch: 'main', path: 'environments/env1' },
      createdAt: new Date().toISOString(),
      policy: DEFAULT_SYNC_POLICY,
      contentDigest: contentDigest(objects, DEFAULT_SYNC_POLICY),
      objects,
    };
    return { cluster, envelope: encodeEnvelope(signBundle(bundle, key)) };
  });
  if (round === 2 && profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  // The bundles go to the stream first, their notifies held back: publishing is the hub's
  // CPU, not the agents'. Then the notifies, as the hub sends them, start the agents' pulls.
  const notifies: [string, Uint8Array | undefined][] = [];
  const heldNotify = {
    jetstream: () => nc.jetstream(),
    publish: (subject: string, data?: Uint8Array) => {
      notifies.push([subject, data]);
    },
    flush: () => nc.flush(),
  };
  expected = revision;
  remaining = K;
  const converged = new Promise<void>((r) => {
    allConverged = r;
  });
  for (const { cluster, envelope } of envelopes)
    await publishBundle(heldNotify, cluster, round, envelope, undefined, { flush: false });
  await nc.flush();
  const fromUs = monotonicUs();
  const cpu0 = process.cpuUsage();
  for (const [subject, data] of notifies) nc.publish(subject, data);
  await nc.flush();
  await converged;
  const wallMs = (monotonicUs() - fromUs) / 1000;
  const toConverged = process.cpuUsage(cpu0);
  // The round's CPU includes what follows the converged report: the drift watch starts (a list
  // and a check of each object) and anything it reports. Half a second is plenty for that here.
  await new Promise((r) => setTimeout(r, 500));
  const cpu = process.cpuUsage(cpu0);
  const us = (cpu.user + cpu.system) / K;
  process.stdout.write(
    `round ${round}${round === 1 ? ' (warm-up, not counted)' : ''}: ${K} bundles converged in ${wallMs.toFixed(0)} ms wall, ${((toConverged.user + toConverged.system) / 1000).toFixed(0)} ms CPU by then, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms with the watches settled: ${us.toFixed(0)} µs per bundle\n`,
  );
  if (round > 1) {
    perBundle.push(us);
    windows.push({ fromUs, toUs: monotonicUs() });
  }
}
const sorted = [...perBundle].sort((a, b) => a - b);
process.stdout.write(
  `agent CPU per bundle (${K} agents, ${ROUNDS - 1} rounds counted): median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} µs, min ${sorted[0]!.toFixed(0)} µs; load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}\n`,
);
if (profiler && values.profile) {
  const { profile } = await profiler.post('Profiler.stop');
  profiler.disconnect();
  writeFileSync(values.profile, JSON.stringify(profile));
  const root = resolve(import.meta.dirname, '..', '..', '..');
  const s = summariseProfile(values.profile, windows, root, {
    top: 30,
    under: ['agent/src/', 'shared/src/', 'e2e/src/sim/memory-cluster'],
  });
  const show = (title: string, xs: typeof s.self) => {
    process.stdout.write(`${title}:\n`);
    for (const x of xs)
      process.stdout.write(
        `  ${x.ms.toString().padStart(6)} ms ${x.percent.toFixed(1).padStart(5)} %  ${x.frame}\n`,
      );
  };
  show('self time by area', s.areas);
  show('top self time', s.self);
  show('agent, shared and memory-cluster functions by total time (with callees)', s.inclusive);
}
await Promise.all(agents.map((a) => a.stop()));
await nc.close();
await nats.stop();
rmSync(base, { recursive: true, force: true });
// Whatever handle the stopped agents' libraries keep open must not keep a finished benchmark up.
process.exit(0);
