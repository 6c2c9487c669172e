/**
 * One process of simulated clusters for `npm run bench:fleet`: each cluster is the agent
 * package's own join and run loop (Register with its own one-time token, its own NATS user
 * and gRPC stream, signature checks, durable outbox in its own state dir) over an in-memory
 * Cluster instead of an API server. Many agents share this process so that a thousand fit
 * on one machine; the parent talks to it over the IPC channel of `child_process.fork`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join as joinPath, resolve } from 'node:path';
import { createFileIdentityStore, join, type RunningAgent, runAgent } from '@flotilla/agent';
import { createClusterReconciler } from '@flotilla/agent/reconcile';
import { Health, Phase } from '@flotilla/proto';
import { createLogger, errorMessage, secretHashKey } from '@flotilla/shared';
import { monotonicUs, type ProfileWindow, type SelfTime, summariseProfile } from '../bench/cpu-profile.js';
import type { SimAgentSpec, SimReply, SimRequest, TamperTarget } from '../bench/sim-protocol.js';
import { createMemoryCluster, type MemoryCluster } from './memory-cluster.js';

const logger = createLogger({ name: 'sim-agent', level: process.env.FLOTILLA_SIM_LOG_LEVEL ?? 'silent' });

interface SimAgent {
  name: string;
  cluster: MemoryCluster;
  running: RunningAgent;
  /** Reports appended to its outbox since the burst began, heartbeats apart. */
  appended: number;
  /** Heartbeats appended to its outbox since the burst began. */
  heartbeats: number;
  /** The burst's changed object was reported drifted, then reported without drift (healed). */
  drifted: boolean;
  healed: boolean;
  /** Seq of its first report Synced and Healthy at the expected revision, then when the hub acknowledged it. */
  convergedSeq?: bigint;
  convergedAt?: number;
}

/** The revision a round committed: each agent's first Synced and Healthy report at it is timed. */
let expected: string | undefined;

/** The burst being measured: appends are counted from `burstFrom`, drift of `burstTarget` watched. */
let burstFrom: number | undefined;
let burstTarget: TamperTarget | undefined;
let firstAppendAt = 0;
let lastAppendAt = 0;

const agents = new Map<string, SimAgent>();

/**
 * `FLOTILLA_SIM_CPU_DIR=DIR npm run bench:fleet …` (the workers inherit the environment): each
 * agent process writes `agents-<pid>.txt` to DIR when it stops, with its CPU per round (from
 * `expect` to its agents' convergence) per agent converged. With `FLOTILLA_SIM_CPU_PROF=1` too,
 * it profiles itself (V8's CPU profiler, as `node --cpu-prof`), writes `agents-<pid>.cpuprofile`
 * beside it, and adds where the rounds' CPU went.
 */
const cpuDir = process.env.FLOTILLA_SIM_CPU_DIR;
const profiler = cpuDir && process.env.FLOTILLA_SIM_CPU_PROF === '1' ? await startProfiler() : undefined;
/** Each round from `expect` to `converged`: its window on the monotonic clock and the process's CPU. */
const rounds: (ProfileWindow & { cpuUs: number; converged: number })[] = [];
let roundFrom: { us: number; cpu: NodeJS.CpuUsage } | undefined;

async function startProfiler(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return session;
}

/** Writes the per-round CPU and, when profiled, the profile (the whole life of the process) and its summary. */
async function writeCpuReport(): Promise<void> {
  if (!cpuDir) return;
  mkdirSync(cpuDir, { recursive: true });
  const lines = rounds.map(
    (r, i) =>
      `round ${i + 1}: ${r.converged} agents converged, ${(r.cpuUs / 1000).toFixed(0)} ms CPU, ${(r.cpuUs / Math.max(1, r.converged)).toFixed(0)} µs per agent`,
  );
  if (profiler && rounds.length > 0) {
    const { profile } = await profiler.post('Profiler.stop');
    profiler.disconnect();
    const file = joinPath(cpuDir, `agents-${process.pid}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    const root = resolve(import.meta.dirname, '..', '..', '..');
    const under = ['agent/src/', 'shared/src/', 'e2e/src/sim/'];
    const summary = summariseProfile(file, rounds, root, { top: 30, under });
    const top = (title: string, xs: SelfTime[]) => [
      `${title}:`,
      ...xs.map(
        (x) => `  ${x.ms.toString().padStart(6)} ms ${x.percent.toFixed(1).padStart(5)} %  ${x.frame}`,
      ),
    ];
    lines.push(
      ...top('self time by area in the rounds', summary.areas),
      ...top('top self time in the rounds', summary.self),
      ...top(
        'agent/src, shared/src and e2e/src/sim functions by total time (with callees) in the rounds',
        summary.inclusive,
      ),
    );
  }
  writeFileSync(joinPath(cpuDir, `agents-${process.pid}.txt`), `${lines.join('\n')}\n`);
}

function send(reply: SimReply): void {
  if (process.connected) process.send?.(reply);
}

async function startOne(spec: SimAgentSpec, baseDir: string, readyDelayMs: number): Promise<void> {
  const stateDir = joinPath(baseDir, spec.name);
  mkdirSync(stateDir, { recursive: true });
  const store = createFileIdentityStore(stateDir);
  // A hub busy with a thousand joins answers slowly: wait for it rather than fail the join
  // (a retry could not reuse the one-time token the hub may have taken meanwhile).
  const identity = await join({
    hub: spec.hub,
    token: spec.token,
    caHash: spec.caHash,
    store,
    logger,
    timeoutMs: 180_000,
  });
  const cluster = createMemoryCluster({ readyDelayMs });
  const reconciler = createClusterReconciler(cluster, {
    cluster: identity.cluster,
    logger,
    secretHashKey: secretHashKey(identity.agentKey),
  });
  const running = await runAgent({
    identity,
    saveIdentity: (next) => store.save(next),
    stateDir,
    reconciler,
    logger,
    heartbeatMs: 10_000,
  });
  const agent: SimAgent = {
    name: spec.name,
    cluster,
    running,
    appended: 0,
    heartbeats: 0,
    drifted: false,
    healed: false,
  };
  running.outbox.onAppend((report) => {
    const body = report.body;
    if (
      expected &&
      agent.convergedSeq === undefined &&
      body.case === 'status' &&
      body.value.revision === expected &&
      body.value.phase === Phase.SYNCED &&
      body.value.health === Health.HEALTHY
    ) {
      agent.convergedSeq = report.seq;
    }
    if (burstFrom === undefined) return;
    const t = Date.now();
    if (!firstAppendAt) firstAppendAt = t;
    // A heartbeat says nothing about the burst: 1,000 agents send about 100 a second, so
    // counting them (or waiting for a second without any) would make the burst never end.
    if (body.case === 'heartbeat') {
      agent.heartbeats++;
      return;
    }
    lastAppendAt = t;
    agent.appended++;
    if (body.case === 'status' && burstTarget) {
      const target = burstTarget;
      const drifts = body.value.resources.some(
        (r) =>
          r.ref?.kind === target.kind &&
          r.ref.name === target.name &&
          (r.ref.namespace || undefined) === target.namespace &&
          r.drift.length > 0,
      );
      if (drifts) agent.drifted = true;
      else if (agent.drifted) agent.healed = true;
    }
  });
  agents.set(spec.name, agent);
}

/** Joins and starts the agents, a few at a time: each join is a TLS fetch and a Register call. */
async function start(request: Extract<SimRequest, { op: 'start' }>): Promise<void> {
  const queue = [...request.agents];
  const failed: { name: string; error: string }[] = [];
  const lane = async () => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) {
      try {
        await startOne(spec, request.baseDir, request.readyDelayMs);
      } catch (err) {
        failed.push({ name: spec.name, error: errorMessage(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, request.concurrency) }, lane));
  send({ op: 'started', started: request.agents.length - failed.length, failed });
}

/**
 * Every simulated cluster has one field of one object changed behind its agent's back; then
 * waits until every agent has reported the drift and then the heal, and its outbox is empty
 * again (the hub acknowledges a report once stored). Heartbeats are counted apart: they are
 * not the burst, and they never stop.
 */
async function burst(request: Extract<SimRequest, { op: 'burst' }>): Promise<void> {
  const { target } = request;
  for (const a of agents.values()) {
    a.appended = 0;
    a.heartbeats = 0;
    a.drifted = false;
    a.healed = false;
  }
  firstAppendAt = 0;
  lastAppendAt = 0;
  burstTarget = target;
  burstFrom = Date.now();
  let edited = 0;
  for (const a of agents.values()) {
    const ok = a.cluster.edit(target.apiVersion, target.kind, target.namespace, target.name, (obj) => {
      const data = (obj.data ?? {}) as Record<string, string>;
      data[target.key] = request.value;
      obj.data = data;
    });
    if (ok) edited++;
  }
  const all = [...agents.values()];
  let drainedAt = 0;
  for (;;) {
    const t = Date.now();
    const empty = all.every((a) => a.running.outbox.pending().length === 0);
    if (empty && drainedAt < lastAppendAt) drainedAt = t;
    const healed = all.every((a) => a.healed);
    if ((healed && empty) || t - burstFrom > request.timeoutMs) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  burstFrom = undefined;
  burstTarget = undefined;
  send({
    op: 'burst',
    edited,
    result: {
      reports: all.reduce((n, a) => n + a.appended, 0),
      heartbeats: all.reduce((n, a) => n + a.heartbeats, 0),
      unhealed: all.filter((a) => !a.healed).length,
      firstAppendAt,
      drainedAt,
      silent: all.filter((a) => a.appended === 0).length,
    },
  });
}

/**
 * The hub's ingest capacity: every agent appends `perAgent` full status reports to its
 * outbox at once (what an agent sends after a long disconnect), then waits until every
 * outbox is empty again, i.e. the hub has stored and acknowledged each of them.
 */
async function flood(request: Extract<SimRequest, { op: 'flood' }>): Promise<void> {
  const all = [...agents.values()];
  const cpu = process.cpuUsage();
  const from = Date.now();
  for (const a of all) {
    const body = a.running.agent.currentStatus();
    for (let i = 0; i < request.perAgent; i++) a.running.outbox.append(body);
  }
  const appendedAt = Date.now();
  let drainedAt = 0;
  for (;;) {
    const t = Date.now();
    if (all.every((a) => a.running.outbox.pending().length === 0)) {
      drainedAt = t;
      break;
    }
    if (t - from > request.timeoutMs) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const used = process.cpuUsage(cpu);
  send({
    op: 'flooded',
    result: {
      reports: all.length * request.perAgent,
      firstAppendAt: from,
      drainedAt,
      silent: all.filter((a) => a.running.outbox.pending().length > 0).length,
    },
    appendedAt,
    cpuMs: Math.round((used.user + used.system) / 1000),
  });
}

/**
 * Waits until the hub has acknowledged, i.e. stored, every agent's first Synced and Healthy
 * report at the expected revision: the moment the hub's fleet view shows it converged.
 */
async function awaitConverged(timeoutMs: number): Promise<void> {
  const all = [...agents.values()];
  const until = Date.now() + timeoutMs;
  for (;;) {
    const t = Date.now();
    for (const a of all) {
      if (a.convergedSeq === undefined || a.convergedAt !== undefined) continue;
      const oldest = a.running.outbox.pending()[0];
      if (!oldest || oldest.seq > a.convergedSeq) a.convergedAt = t;
    }
    if (all.every((a) => a.convergedAt !== undefined) || t > until) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  expected = undefined;
  if (roundFrom) {
    const cpu = process.cpuUsage(roundFrom.cpu);
    const converged = all.filter((a) => a.convergedAt !== undefined).length;
    rounds.push({ fromUs: roundFrom.us, toUs: monotonicUs(), cpuUs: cpu.user + cpu.system, converged });
    roundFrom = undefined;
  }
  const at: Record<string, number> = {};
  for (const a of all) if (a.convergedAt !== undefined) at[a.name] = a.convergedAt;
  send({ op: 'converged', at, missing: all.filter((a) => a.convergedAt === undefined).map((a) => a.name) });
}

async function stop(): Promise<void> {
  await Promise.all(
    [...agents.values()].map(async (a) => {
      await a.running.stop().catch(() => undefined);
      a.cluster.close();
    }),
  );
  agents.clear();
  send({ op: 'stopped' });
}

process.on('message', (message: SimRequest) => {
  const work = async () => {
    switch (message.op) {
      case 'start':
        return start(message);
      case 'burst':
        return burst(message);
      case 'flood':
        return flood(message);
      case 'expect':
        expected = message.revision;
        roundFrom = { us: monotonicUs(), cpu: process.cpuUsage() };
        for (const a of agents.values()) {
          a.convergedSeq = undefined;
          a.convergedAt = undefined;
        }
        return send({ op: 'armed' });
      case 'await':
        return awaitConverged(message.timeoutMs);
      case 'stats':
        return send({
          op: 'stats',
          rssKiB: Math.round(process.memoryUsage.rss() / 1024),
          agents: agents.size,
        });
      case 'stop':
        await stop();
        await writeCpuReport().catch((err) =>
          process.stderr.write(`CPU report not written: ${errorMessage(err)}\n`),
        );
        process.disconnect?.();
        return;
    }
  };
  work().catch((err) => send({ op: 'error', error: errorMessage(err) }));
});
// The parent gone means the benchmark is over: never linger holding ports and state dirs.
process.on('disconnect', () => {
  void stop().finally(() => process.exit(0));
});
