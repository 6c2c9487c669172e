import {
  canonicalJson,
  ErrorCode,
  errorMessage,
  FlotillaError,
  type KubeObject,
  type Logger,
  sha256Digest,
} from '@flotilla/shared';
import { and, eq, inArray } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit.js';
import type { BundleHead } from '../bundles/publish-cluster.js';
import { DEFAULT_MAX_PRUNE, type EnvironmentConfig, type FleetConfig } from '../config/index.js';
import type { Db } from '../db/database.js';
import { clusterHolds, clusters as clustersTable, pruneApprovals, rollouts } from '../db/schema.js';
import type { ClusterWork, PublishGate, ReviewRequest } from '../publish-loop/cluster-publish.js';
import type { GitSource } from '../source/index.js';
import type { FleetClusterStatus } from '../status/fleet-view.js';
import { blastRadiusHold, pruneUnchecked } from './blast-radius.js';
import { type Pause, type Pauses, pauseText } from './pause.js';
import {
  assignWaves,
  isReady,
  planRollout,
  type RolloutEvent,
  type RolloutRecord,
  type WaveClusterState,
} from './waves.js';

/** One cluster of a wave, as `flotilla rollout status` shows it. */
export interface RolloutClusterStatus {
  name: string;
  released: boolean;
  ready: boolean;
  paused: Pause | null;
  generation: number | null;
  desiredGeneration: number | null;
  health: string;
  phase: string | null;
  hold: string | null;
}

export interface RolloutWaveStatus {
  index: number;
  name: string;
  picks: string;
  state: 'done' | 'rolling' | 'halted' | 'waiting';
  clusters: RolloutClusterStatus[];
}

/** `flotilla rollout status ENV -o json`. */
export interface RolloutStatus {
  environment: string;
  /** `none`: the environment has no waves (every cluster gets a new generation at once). */
  state: 'none' | 'rolling' | 'halted' | 'complete';
  commit: string | null;
  startedAt: string | null;
  soakMs: number;
  maxUnavailable: number | null;
  halted: { cluster: string; reason: string; at: string } | null;
  waves: RolloutWaveStatus[];
}

export interface RolloutService {
  /** The publish pass's gate: pause, waves and blast radius. */
  gate: PublishGate;
  status(environment: string): Promise<RolloutStatus>;
  /** Goes on past a halt: the halted wave counts as done and the next one starts. */
  resume(environment: string, actor: string): Promise<RolloutStatus>;
  /** Lets the held render of a cluster prune past the blast-radius threshold. */
  approve(cluster: string, actor: string): Promise<{ cluster: string; digest: string }>;
  /** Re-evaluates rollouts in progress every tick and runs a pass when a wave may start or must halt. */
  start(): void;
  stop(): Promise<void>;
}

export interface RolloutServiceOptions {
  db: Db;
  source: Pick<GitSource, 'treeId' | 'resolveBranch' | 'defaultBranch'>;
  fleet: { status(): Promise<FleetClusterStatus[]> };
  pauses: Pauses;
  audit: AuditLog;
  logger: Logger;
  /** The fleet config of the newest good pass. */
  config(): Promise<FleetConfig | undefined>;
  /** The objects of each named cluster's newest bundle (what a new one would prune from), in one lookup. */
  previousObjects(clusters: string[]): Promise<ReadonlyMap<string, readonly KubeObject[]>>;
  /** Runs a publish pass (on the leading replica). */
  trigger(reason: string): Promise<unknown>;
  /** Only the leading replica ticks. */
  isLeader(): boolean;
  /** Told of every rollout event (notifications). */
  onEvent?(environment: string, event: RolloutEvent, record: RolloutRecord): void;
  now?: () => Date;
  /** How often rollouts in progress are looked at; default 2 s. */
  tickMs?: number;
}

type RolloutRow = typeof rollouts.$inferSelect;

const toRecord = (row: RolloutRow): RolloutRecord => ({
  key: row.key,
  commit: row.commit,
  wave: row.wave,
  waveAt: row.waveAt,
  released: row.released,
  halted: row.halted ?? null,
});

const sameRecord = (a: RolloutRecord | undefined, b: RolloutRecord) =>
  !!a &&
  a.key === b.key &&
  a.wave === b.wave &&
  canonicalJson(a.halted) === canonicalJson(b.halted) &&
  canonicalJson(a.released) === canonicalJson(b.released);

const toState = (s: FleetClusterStatus): WaveClusterState => ({
  name: s.name,
  generation: s.generation,
  desiredGeneration: s.desiredGeneration,
  phase: s.phase,
  health: s.health,
  connected: s.connected,
  healthySince: s.healthySince,
  error: s.error,
});

/**
 * Safe rollout: which clusters a publish pass may give a new generation. Paused clusters get
 * none; an environment with `rollout.waves` releases its clusters wave by wave, each gated on
 * the previous one's health and soak and halted by a Degraded cluster; a render that would
 * prune past `rollout.maxPrune` is held until approved. The rollout record is written by the
 * leading replica's passes only; resume writes it from any replica and asks for a pass.
 */
export function createRolloutService(options: RolloutServiceOptions): RolloutService {
  const { db, source, fleet, pauses, audit, logger } = options;
  const now = options.now ?? (() => new Date());
  const tickMs = options.tickMs ?? 2000;
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;

  const keyOf = async (env: EnvironmentConfig, commit: string) => {
    const tree = await source.treeId(commit, env.path).catch(() => null);
    return sha256Digest(`${tree ?? commit}\n${canonicalJson(env)}`);
  };

  const records = async (envs?: string[]) =>
    new Map(
      (
        await db
          .select()
          .from(rollouts)
          .where(envs ? inArray(rollouts.environment, envs.length ? envs : ['']) : undefined)
      ).map((r) => [r.environment, toRecord(r)]),
    );

  const save = async (environment: string, record: RolloutRecord) => {
    const values = {
      environment,
      key: record.key,
      commit: record.commit,
      wave: record.wave,
      waveAt: record.waveAt,
      released: record.released,
      halted: record.halted,
      updatedAt: now(),
    };
    await db
      .insert(rollouts)
      .values(values)
      .onConflictDoUpdate({ target: rollouts.environment, set: values });
  };

  const announce = async (environment: string, events: RolloutEvent[], record: RolloutRecord) => {
    for (const event of events) {
      const short = record.commit.slice(0, 12);
      if (event.kind === 'halted') {
        logger.warn({ environment, cluster: event.cluster, reason: event.reason }, 'rollout halted');
        await audit.record({
          action: 'rollout.halt',
          actor: 'hub',
          cluster: event.cluster,
          outcome: 'ok',
          detail: `${environment} at ${short}, wave ${record.wave + 1}: ${event.reason}`,
        });
      } else if (event.kind === 'wave')
        logger.info({ environment, wave: event.wave + 1, commit: short }, 'rollout: next wave');
      else logger.info({ environment, commit: short }, `rollout ${event.kind}`);
      try {
        options.onEvent?.(environment, event, record);
      } catch (err) {
        logger.warn({ err: errorMessage(err) }, 'rollout event listener failed');
      }
    }
  };

  /** Plans every environment with waves among `envs`; saves what changed when `commit` is true. */
  const planAll = async (
    envs: Array<{ env: EnvironmentConfig; commit: string; members: ClusterWork['cluster'][] }>,
    paused: Map<string, Pause>,
    persist: boolean,
  ) => {
    const holds = new Map<string, string>();
    const withWaves = envs.filter((e) => (e.env.rollout?.waves.length ?? 0) > 0);
    if (withWaves.length === 0) return { holds, changed: false };
    const [states, stored] = await Promise.all([
      fleet.status().then((rows) => new Map(rows.map((r) => [r.name, toState(r)]))),
      records(withWaves.map((e) => e.env.name)),
    ]);
    let changed = false;
    for (const { env, commit, members } of withWaves) {
      const rollout = env.rollout!;
      const plan = planRollout({
        config: rollout,
        waves: assignWaves(rollout, members),
        record: stored.get(env.name),
        key: await keyOf(env, commit),
        commit,
        states,
        paused: new Set(members.filter((m) => paused.has(m.name)).map((m) => m.name)),
        now: now(),
      });
      for (const [c, reason] of plan.holds) holds.set(c, reason);
      if (sameRecord(stored.get(env.name), plan.record)) continue;
      changed = true;
      if (persist) {
        await save(env.name, plan.record);
        await announce(env.name, plan.events, plan.record);
      }
    }
    return { holds, changed };
  };

  const recordHolds = async (
    kind: 'wave' | 'blast-radius',
    scope: string[],
    held: Map<string, { reason: string; digest?: string }>,
  ) => {
    if (scope.length === 0) return;
    const clear = scope.filter((c) => !held.has(c));
    if (clear.length > 0)
      await db
        .delete(clusterHolds)
        .where(and(eq(clusterHolds.kind, kind), inArray(clusterHolds.cluster, clear)));
    for (const [cluster, h] of held) {
      const values = { cluster, kind, reason: h.reason, digest: h.digest ?? null };
      await db
        .insert(clusterHolds)
        .values({ ...values, since: now() })
        .onConflictDoUpdate({ target: clusterHolds.cluster, set: values });
    }
  };

  const gate: PublishGate = {
    async hold(work: ClusterWork[], _heads: ReadonlyMap<string, BundleHead>) {
      const paused = await pauses.pausedClusters(work.map((w) => w.cluster));
      const holds = new Map<string, string>();
      for (const [c, p] of paused) holds.set(c, `${pauseText(p)}: it keeps its bundle`);
      const byEnv = new Map<
        string,
        { env: EnvironmentConfig; commit: string; members: ClusterWork['cluster'][] }
      >();
      for (const w of work) {
        const e = byEnv.get(w.env.name) ?? { env: w.env, commit: w.commit, members: [] };
        e.members.push(w.cluster);
        byEnv.set(w.env.name, e);
      }
      const planned = await planAll([...byEnv.values()], paused, true);
      const waveHolds = new Map<string, { reason: string }>();
      for (const [c, reason] of planned.holds) {
        if (!holds.has(c)) waveHolds.set(c, { reason });
        holds.set(c, holds.get(c) ?? reason);
      }
      await recordHolds(
        'wave',
        work.map((w) => w.cluster.name),
        waveHolds,
      );
      return holds;
    },

    async review(requests: ReviewRequest[]) {
      const verdicts: Array<string | undefined> = [];
      const held = new Map<string, { reason: string; digest: string }>();
      const maxPruneOf = (r: ReviewRequest) => r.work.env.rollout?.maxPrune ?? DEFAULT_MAX_PRUNE;
      // Only a render that may prune is compared with its cluster's newest bundle: those are
      // read in one lookup, not one query per cluster.
      const compared = requests.filter(
        (r) => r.head && !pruneUnchecked(r.work.env.policy, maxPruneOf(r), r.objects),
      );
      const previousOf =
        compared.length > 0
          ? await options.previousObjects(compared.map((r) => r.work.cluster.name))
          : new Map<string, readonly KubeObject[]>();
      for (const r of requests) {
        const cluster = r.work.cluster.name;
        const maxPrune = maxPruneOf(r);
        let reason: string | undefined;
        if (r.head) {
          const previous = previousOf.get(cluster);
          reason = previous
            ? blastRadiusHold({ cluster, previous, next: r.objects, policy: r.work.env.policy, maxPrune })
            : undefined;
          if (reason) {
            const [approval] = await db
              .select()
              .from(pruneApprovals)
              .where(and(eq(pruneApprovals.cluster, cluster), eq(pruneApprovals.digest, r.digest)));
            if (approval) reason = undefined;
          }
        }
        if (reason) held.set(cluster, { reason, digest: r.digest });
        verdicts.push(reason);
      }
      await recordHolds(
        'blast-radius',
        requests.map((r) => r.work.cluster.name),
        held,
      );
      for (const [cluster, h] of held) logger.warn({ cluster, reason: h.reason }, 'bundle held');
      return verdicts;
    },

    async heldNow(names: string[]) {
      const rows = await db.select().from(clusterHolds).where(inArray(clusterHolds.cluster, names));
      return new Map(rows.map((r) => [r.cluster, r.reason]));
    },
  };

  const envMembers = async (config: FleetConfig, environment: string) => {
    const env = config.environments.find((e) => e.name === environment);
    if (!env)
      throw new FlotillaError(
        ErrorCode.NotFound,
        `environment ${environment}: not in flotilla.yaml (environments: ${config.environments.map((e) => e.name).join(', ')})`,
      );
    const members = (
      await db.select().from(clustersTable).where(eq(clustersTable.environment, environment))
    ).map((c) => ({ name: c.name, environment: c.environment, labels: c.labels }));
    return { env, members };
  };

  const loadConfig = async () => {
    const config = await options.config();
    if (!config)
      throw new FlotillaError(
        ErrorCode.Unavailable,
        'rollout: the hub has not read flotilla.yaml yet; try again shortly',
      );
    return config;
  };

  const status = async (environment: string): Promise<RolloutStatus> => {
    const { env, members } = await envMembers(await loadConfig(), environment);
    const rollout = env.rollout;
    const [rows, stored, paused, holds] = await Promise.all([
      fleet.status(),
      records([environment]),
      pauses.pausedClusters(members),
      members.length
        ? db
            .select()
            .from(clusterHolds)
            .where(
              inArray(
                clusterHolds.cluster,
                members.map((m) => m.name),
              ),
            )
        : Promise.resolve([]),
    ]);
    const byName = new Map(rows.map((r) => [r.name, r]));
    const holdOf = new Map(holds.map((h) => [h.cluster, h.reason]));
    const record = stored.get(environment);
    const waves = rollout && rollout.waves.length > 0 ? assignWaves(rollout, members) : [];
    const clusterStatus = (name: string): RolloutClusterStatus => {
      const s = byName.get(name);
      const p = paused.get(name) ?? null;
      return {
        name,
        released: !!record?.released.includes(name),
        ready: s ? isReady(toState(s)) : false,
        paused: p,
        generation: s?.generation ?? null,
        desiredGeneration: s?.desiredGeneration ?? null,
        health: s?.health ?? 'Unknown',
        phase: s?.phase ?? null,
        hold: p ? pauseText(p) : (holdOf.get(name) ?? null),
      };
    };
    const state: RolloutStatus['state'] =
      waves.length === 0
        ? 'none'
        : !record
          ? 'rolling'
          : record.halted
            ? 'halted'
            : record.wave >= waves.length
              ? 'complete'
              : 'rolling';
    return {
      environment,
      state,
      commit: record?.commit ?? null,
      startedAt: record ? record.waveAt.toISOString() : null,
      soakMs: rollout?.soakMs ?? 0,
      maxUnavailable: rollout?.maxUnavailable ?? null,
      halted: record?.halted ?? null,
      waves: waves.map((w) => ({
        index: w.index,
        name: w.name,
        picks: w.picks,
        state: !record
          ? 'waiting'
          : w.index < record.wave
            ? 'done'
            : w.index > record.wave
              ? 'waiting'
              : record.halted
                ? 'halted'
                : 'rolling',
        clusters: w.clusters.map((c) => {
          const cs = clusterStatus(c);
          return record && w.index < record.wave ? { ...cs, released: true } : cs;
        }),
      })),
    };
  };

  const tick = async () => {
    if (!options.isLeader()) return;
    const stored = await records();
    const config = await options.config();
    if (!config) return;
    const inProgress = config.environments.filter((e) => {
      const r = stored.get(e.name);
      return r && !r.halted && (e.rollout?.waves.length ?? 0) > 0;
    });
    if (inProgress.length === 0) return;
    const all = await db.select().from(clustersTable);
    const envs = inProgress.map((env) => ({
      env,
      commit: stored.get(env.name)!.commit,
      members: all.filter((c) => c.environment === env.name),
    }));
    const paused = await pauses.pausedClusters(all);
    // A dry plan: a pass plans again, saves and publishes, so that what is released is published at once.
    const { changed } = await planAll(
      envs.filter(({ env }) => {
        const r = stored.get(env.name)!;
        return (
          r.wave <
          assignWaves(
            env.rollout!,
            all.filter((c) => c.environment === env.name),
          ).length
        );
      }),
      paused,
      false,
    );
    if (changed) await options.trigger('rollout');
  };

  return {
    gate,
    status,
    async resume(environment, actor) {
      const { env, members } = await envMembers(await loadConfig(), environment);
      const record = (await records([environment])).get(environment);
      if (!record?.halted)
        throw new FlotillaError(ErrorCode.Conflict, `rollout ${environment}: not halted; nothing to resume`);
      const waves = assignWaves(env.rollout ?? { waves: [] }, members);
      const next: RolloutRecord = {
        ...record,
        halted: null,
        wave: Math.min(record.wave + 1, waves.length),
        waveAt: now(),
      };
      await save(environment, next);
      await audit.record({
        action: 'rollout.resume',
        actor,
        cluster: null,
        outcome: 'ok',
        detail: `${environment} at ${record.commit.slice(0, 12)}: past the halt at wave ${record.wave + 1} (${record.halted.reason})`,
      });
      void options.trigger(`rollout resume ${environment}`);
      return status(environment);
    },
    async approve(cluster, actor) {
      const [hold] = await db
        .select()
        .from(clusterHolds)
        .where(and(eq(clusterHolds.cluster, cluster), eq(clusterHolds.kind, 'blast-radius')));
      if (!hold?.digest)
        throw new FlotillaError(
          ErrorCode.NotFound,
          `cluster ${cluster}: no bundle held for its blast radius`,
        );
      await db.insert(pruneApprovals).values({ cluster, digest: hold.digest, actor }).onConflictDoNothing();
      await audit.record({
        action: 'bundle.approve',
        actor,
        cluster,
        outcome: 'ok',
        detail: `${hold.digest}: ${hold.reason}`,
      });
      void options.trigger(`approve ${cluster}`);
      return { cluster, digest: hold.digest };
    },
    start() {
      if (timer) return;
      timer = setInterval(() => {
        if (ticking) return;
        ticking = tick()
          .catch((err) => logger.warn({ err: errorMessage(err) }, 'rollout tick failed'))
          .finally(() => {
            ticking = undefined;
          });
      }, tickMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await ticking;
    },
  };
}
