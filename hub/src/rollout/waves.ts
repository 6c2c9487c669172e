import { type RolloutConfig, selectorMatches, selectorText } from '../config/index.js';

/** One wave of an environment, with its clusters in the order they are released. */
export interface Wave {
  index: number;
  name: string;
  /** How the wave picks its clusters, for display: a selector, a share, or the rest. */
  picks: string;
  clusters: string[];
}

/**
 * Splits an environment's clusters into its waves. Clusters are taken in name order, so the
 * same fleet always gives the same waves. A selector wave takes the clusters it matches that
 * no earlier wave took; a percent wave is cumulative (after it, that share of the clusters,
 * rounded up, is taken); clusters no wave took form a last wave, `rest`.
 */
export function assignWaves(
  config: Pick<RolloutConfig, 'waves'>,
  members: ReadonlyArray<{ name: string; labels: Readonly<Record<string, string>> }>,
): Wave[] {
  const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const taken = new Set<string>();
  const waves: Wave[] = [];
  for (const [index, w] of config.waves.entries()) {
    let clusters: string[];
    if ('selector' in w) {
      clusters = sorted
        .filter((c) => !taken.has(c.name) && selectorMatches(w.selector, c.labels))
        .map((c) => c.name);
    } else {
      const target = Math.ceil((w.percent / 100) * sorted.length);
      clusters = sorted
        .filter((c) => !taken.has(c.name))
        .slice(0, Math.max(0, target - taken.size))
        .map((c) => c.name);
    }
    for (const c of clusters) taken.add(c);
    waves.push({
      index,
      name: w.name,
      picks: 'selector' in w ? selectorText(w.selector) : `${w.percent}%`,
      clusters,
    });
  }
  const rest = sorted.filter((c) => !taken.has(c.name)).map((c) => c.name);
  if (rest.length > 0) waves.push({ index: waves.length, name: 'rest', picks: 'the rest', clusters: rest });
  return waves;
}

/** What the rollout needs to know of a cluster's state, from the fleet view. */
export interface WaveClusterState {
  name: string;
  /** Applied generation and the newest one published. */
  generation: number | null;
  desiredGeneration: number | null;
  phase: string | null;
  health: string;
  connected: boolean;
  healthySince: string | null;
  error: string | null;
}

/** Where an environment's rollout stands; stored in `rollouts`. */
export interface RolloutRecord {
  /** What is rolled out: the environment's content and config (a new key starts a new rollout). */
  key: string;
  commit: string;
  /** The wave being rolled out; `waves.length` once the last one is done. */
  wave: number;
  waveAt: Date;
  released: string[];
  halted: { cluster: string; reason: string; at: string } | null;
}

export interface PlanInput {
  config: RolloutConfig;
  waves: Wave[];
  record: RolloutRecord | undefined;
  key: string;
  commit: string;
  states: ReadonlyMap<string, WaveClusterState>;
  paused: ReadonlySet<string>;
  now: Date;
}

export type RolloutEvent =
  | { kind: 'started' }
  | { kind: 'wave'; wave: number }
  | { kind: 'halted'; cluster: string; reason: string }
  | { kind: 'completed' };

export interface RolloutPlan {
  record: RolloutRecord;
  /** Clusters that get no new bundle now, with the reason. */
  holds: Map<string, string>;
  complete: boolean;
  events: RolloutEvent[];
}

/** Ready: running the newest bundle published for it, Synced and Healthy, and connected. */
export function isReady(s: WaveClusterState | undefined): boolean {
  return (
    !!s &&
    s.connected &&
    s.generation !== null &&
    s.generation === s.desiredGeneration &&
    s.phase === 'Synced' &&
    s.health === 'Healthy'
  );
}

/** Why a cluster that runs its newest bundle stops the rollout, if it does. */
function haltReason(s: WaveClusterState | undefined): string | undefined {
  if (!s || s.generation === null || s.generation !== s.desiredGeneration) return undefined;
  if (s.health === 'Degraded')
    return `cluster ${s.name} is Degraded at generation ${s.generation}${s.error ? `: ${s.error}` : ''}`;
  if (s.phase === 'Failed')
    return `cluster ${s.name} failed to apply generation ${s.generation}${s.error ? `: ${s.error}` : ''}`;
  return undefined;
}

const short = (commit: string) => commit.slice(0, 12);

function durationText(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.ceil(ms / 1000)}s`;
}

/**
 * One step of an environment's rollout, as data: from the stored record and the clusters'
 * states, which clusters may have the new generation now, and the record to store. A wave
 * starts once every unpaused cluster of the one before is ready and has been for the soak
 * time; within a wave at most `maxUnavailable` released clusters may be not ready at once. A
 * cluster of the current wave that turns Degraded (or fails to apply) at its newest
 * generation halts the rollout: nothing more is released until a resume or a new key.
 */
export function planRollout(input: PlanInput): RolloutPlan {
  const { config, waves, states, paused, now } = input;
  const events: RolloutEvent[] = [];
  let record: RolloutRecord;
  if (!input.record || input.record.key !== input.key) {
    record = { key: input.key, commit: input.commit, wave: 0, waveAt: now, released: [], halted: null };
    events.push({ kind: 'started' });
  } else record = { ...input.record, released: [...input.record.released] };
  const released = new Set(record.released);
  // Clusters that joined a wave already done, and clusters that have no bundle yet (nothing to break), go now.
  for (const wave of waves)
    for (const c of wave.clusters)
      if (wave.index < record.wave || (states.get(c)?.desiredGeneration ?? null) === null) released.add(c);
  while (record.wave < waves.length && !record.halted) {
    const wave = waves[record.wave]!;
    const members = wave.clusters.filter((c) => !paused.has(c));
    const halt = members
      .filter((c) => released.has(c))
      .map((c) => ({ cluster: c, reason: haltReason(states.get(c)) }))
      .find((h) => h.reason);
    if (halt) {
      record.halted = { cluster: halt.cluster, reason: halt.reason!, at: now.toISOString() };
      events.push({ kind: 'halted', cluster: halt.cluster, reason: halt.reason! });
      break;
    }
    const unready = members.filter((c) => released.has(c) && !isReady(states.get(c))).length;
    let slots = (config.maxUnavailable ?? Number.POSITIVE_INFINITY) - unready;
    for (const c of members) {
      if (slots <= 0) break;
      if (released.has(c)) continue;
      released.add(c);
      slots--;
    }
    if (!members.every((c) => released.has(c) && isReady(states.get(c)))) break;
    // A wave whose clusters were already ready (unchanged content) counts as soaked from its release.
    const since = Math.max(
      record.waveAt.getTime(),
      ...members.map((c) => Date.parse(states.get(c)?.healthySince ?? '') || 0),
    );
    if (config.soakMs > 0 && now.getTime() - since < config.soakMs) break;
    record.wave++;
    record.waveAt = now;
    events.push(record.wave < waves.length ? { kind: 'wave', wave: record.wave } : { kind: 'completed' });
  }
  const complete = record.wave >= waves.length;
  record.released = [...released].sort();

  const holds = new Map<string, string>();
  const current = waves[record.wave];
  for (const wave of waves) {
    for (const c of wave.clusters) {
      if (released.has(c) || paused.has(c)) continue;
      const what = `rollout of ${short(record.commit)}`;
      if (record.halted)
        holds.set(
          c,
          `${what} halted at wave ${current!.index + 1} (${current!.name}): ${record.halted.reason}; flotilla rollout resume to go on`,
        );
      else if (wave.index === current?.index)
        holds.set(
          c,
          `${what}: wave ${wave.index + 1} (${wave.name}) releases at most ${config.maxUnavailable} cluster(s) at a time`,
        );
      else
        holds.set(
          c,
          `${what}: wave ${wave.index + 1} (${wave.name}) waits for wave ${current!.index + 1} (${current!.name}) to be Synced and Healthy${config.soakMs ? ` for ${durationText(config.soakMs)}` : ''}`,
        );
    }
  }
  return { record, holds, complete, events };
}
