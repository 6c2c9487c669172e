import { type MaintenanceWindow, parseMaintenanceWindow } from '@flotilla/shared';
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { type LabelSelector, matchesSelector, selectorText } from '../clusters/selector.js';
import { parseSelectorNode } from './targets.js';

/** Waves and windows pick clusters with the label selectors of clusters/selector.ts, as targets and apps do. */
export type { LabelSelector };

/** One wave: the clusters a selector picks, or up to a share of the environment's clusters. */
export type WaveConfig = { name: string; selector: LabelSelector } | { name: string; percent: number };

/** A maintenance window, limited to the clusters its selector picks (all of the environment without one). */
export interface WindowConfig extends MaintenanceWindow {
  selector?: LabelSelector;
}

/**
 * `rollout:` of an environment in flotilla.yaml: how a new generation spreads over its clusters.
 * Absent, a new generation reaches every cluster in the same pass, as before.
 */
export interface RolloutConfig {
  /**
   * In order. A selector wave takes the clusters it matches that no earlier wave took; a
   * percent wave is cumulative: once it is released, that share of the environment's clusters
   * (rounded up) has the new generation. Clusters no wave takes form a last wave of their own.
   */
  waves: WaveConfig[];
  /** Clusters of the current wave that may be updating (given the new bundle, not yet Synced and Healthy) at once; default the whole wave. */
  maxUnavailable: number | null;
  /** How long a wave must stay Synced and Healthy before the next one starts. */
  soakMs: number;
  /** Blast radius: a bundle that would prune more than this share (0–1) of a cluster's objects is held; default 0.5. */
  maxPrune: number;
  /** When new generations may be applied; none: at any time. */
  windows: WindowConfig[];
}

export const DEFAULT_MAX_PRUNE = 0.5;

export const DEFAULT_ROLLOUT: RolloutConfig = {
  waves: [],
  maxUnavailable: null,
  soakMs: 0,
  maxPrune: DEFAULT_MAX_PRUNE,
  windows: [],
};

type Fail = (node: unknown, field: string, message: string) => never;

const keyOf = (pair: { key: unknown }) => String((pair.key as { value?: unknown })?.value ?? pair.key);

/** Parses an environment's `rollout:` mapping; errors name the line and field through `fail`. */
export function parseRolloutConfig(
  node: unknown,
  at: string,
  fail: Fail,
  parseDuration: (value: unknown) => number | undefined,
): RolloutConfig {
  if (!isMap(node))
    return fail(node, at, 'must be a mapping (waves, maxUnavailable, soak, maxPrune, windows)');
  const out: RolloutConfig = { ...DEFAULT_ROLLOUT, waves: [], windows: [] };
  for (const pair of node.items) {
    const key = keyOf(pair);
    const field = `${at}.${key}`;
    const where = pair.value ?? pair.key;
    const value = (pair.value as { value?: unknown } | null)?.value;
    if (key === 'waves') {
      if (!isSeq(pair.value)) fail(where, field, 'must be a list of {selector} or {percent}');
      for (const [i, item] of (pair.value as { items: unknown[] }).items.entries())
        out.waves.push(parseWave(item, `${field}[${i}]`, i, fail));
    } else if (key === 'maxUnavailable') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
        fail(where, field, 'must be a whole number of clusters, at least 1');
      out.maxUnavailable = value as number;
    } else if (key === 'soak') {
      const ms = parseDuration(value);
      if (ms === undefined) fail(where, field, 'must be a duration such as 30s, 10m or 1h');
      out.soakMs = ms as number;
    } else if (key === 'maxPrune') {
      const share = parseShare(value);
      if (share === undefined) fail(where, field, 'must be a share such as 50% (0% to 100%)');
      out.maxPrune = share as number;
    } else if (key === 'windows') {
      if (!isSeq(pair.value)) fail(where, field, 'must be a list of {days, hours, timeZone}');
      for (const [i, item] of (pair.value as { items: unknown[] }).items.entries())
        out.windows.push(parseWindow(item, `${field}[${i}]`, fail));
    } else fail(pair.key, field, 'is not a known field');
  }
  return out;
}

function parseShare(value: unknown): number | undefined {
  if (typeof value === 'number' && value >= 0 && value <= 100) return value / 100;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)%$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n <= 100 ? n / 100 : undefined;
}

function parseWave(node: unknown, at: string, index: number, fail: Fail): WaveConfig {
  if (!isMap(node)) return fail(node, at, 'must be a mapping with selector or percent');
  let name = `wave-${index + 1}`;
  let selector: LabelSelector | undefined;
  let percent: number | undefined;
  for (const pair of node.items) {
    const key = keyOf(pair);
    const field = `${at}.${key}`;
    const value = (pair.value as { value?: unknown } | null)?.value;
    if (key === 'name') {
      if (typeof value !== 'string' || !value)
        fail(pair.value ?? pair.key, field, 'must be a non-empty string');
      name = value as string;
    } else if (key === 'selector') selector = parseSelector(pair.value, field, fail);
    else if (key === 'percent') {
      if (typeof value !== 'number' || !(value > 0) || value > 100)
        fail(pair.value ?? pair.key, field, 'must be a number above 0 and at most 100');
      percent = value as number;
    } else fail(pair.key, field, 'is not a known field');
  }
  if ((selector === undefined) === (percent === undefined))
    fail(node, at, 'give exactly one of selector or percent');
  return selector ? { name, selector } : { name, percent: percent! };
}

function parseWindow(node: unknown, at: string, fail: Fail): WindowConfig {
  if (!isMap(node)) return fail(node, at, 'must be a mapping with days, hours, timeZone');
  const raw: Record<string, unknown> = {};
  let selector: LabelSelector | undefined;
  for (const pair of node.items) {
    const key = keyOf(pair);
    if (key === 'selector') selector = parseSelector(pair.value, `${at}.selector`, fail);
    else
      raw[key] = (pair.value as Node | null)?.toJSON?.() ?? (pair.value as { value?: unknown } | null)?.value;
  }
  let window: MaintenanceWindow;
  try {
    window = parseMaintenanceWindow(raw);
  } catch (err) {
    const field = (err as { field?: string }).field;
    const pair = field ? node.items.find((p) => keyOf(p) === field) : undefined;
    return fail(
      pair?.value ?? node,
      field ? `${at}.${field}` : at,
      (err as Error).message.replace(/^[^:]*: /, ''),
    );
  }
  return selector ? { ...window, selector } : window;
}

/**
 * A selector as a mapping or kubectl's short form (`k=v,k!=v,k in (a,b),k notin (a),k,!k`),
 * read as targets and apps read theirs; the short form may not be empty (it would pick every
 * cluster, which a wave or window means by leaving its selector out).
 */
export function parseSelector(node: unknown, at: string, fail: Fail): LabelSelector {
  const selector = parseSelectorNode(node, at, fail);
  if (isScalar(node) && !selector.matchLabels && !selector.matchExpressions)
    fail(node, at, 'must not be empty');
  return selector;
}

/** Whether a cluster's labels satisfy a selector. */
export const selectorMatches = matchesSelector;

/** A selector as kubectl prints it, for messages. */
export { selectorText };
