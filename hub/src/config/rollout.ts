import { type MaintenanceWindow, parseMaintenanceWindow } from '@flotilla/shared';
import { isMap, isScalar, isSeq, type Node } from 'yaml';

/**
 * A Kubernetes label selector: every matchLabels pair and every expression must hold. Written
 * in flotilla.yaml as a mapping (`{matchLabels: {ring: canary}}`) or as kubectl's short form
 * (`ring=canary,region!=eu`).
 */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: Array<{
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values: string[];
  }>;
}

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

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

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

/** A selector as a mapping or kubectl's short form (`k=v,k!=v,k in (a,b),k notin (a),k,!k`). */
export function parseSelector(node: unknown, at: string, fail: Fail): LabelSelector {
  const out: LabelSelector = { matchLabels: {}, matchExpressions: [] };
  const checkKey = (key: string, where: unknown) => {
    if (!LABEL_KEY.test(key) || key.length > 317) fail(where, at, `"${key}" is not a valid label key`);
  };
  const checkValue = (value: string, where: unknown) => {
    if (!LABEL_VALUE.test(value) || value.length > 63)
      fail(where, at, `"${value}" is not a valid label value`);
  };
  if (isScalar(node) && typeof node.value === 'string') {
    for (const raw of splitTerms(node.value)) {
      const term = raw.trim();
      const equality = /^([^\s!=]+)\s*(==?|!=)\s*(\S*)$/.exec(term);
      const set = equality ? null : /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
      const exists = equality || set ? null : /^(!?)([^\s!=(),]+)$/.exec(term);
      if (equality) {
        const [, key, op, value] = equality as unknown as [string, string, string, string];
        checkKey(key, node);
        checkValue(value, node);
        if (op === '!=') out.matchExpressions.push({ key, operator: 'NotIn', values: [value] });
        else out.matchLabels[key] = value;
      } else if (set) {
        const [, key, op, list] = set as unknown as [string, string, string, string];
        checkKey(key, node);
        const values = list.split(',').map((v) => v.trim());
        for (const v of values) checkValue(v, node);
        out.matchExpressions.push({ key, operator: op === 'in' ? 'In' : 'NotIn', values });
      } else if (exists) {
        const [, not, key] = exists as unknown as [string, string, string];
        checkKey(key, node);
        out.matchExpressions.push({ key, operator: not ? 'DoesNotExist' : 'Exists', values: [] });
      } else
        fail(
          node,
          at,
          `cannot read "${term}" as a selector term (k=v, k!=v, k in (a,b), k notin (a), k, !k)`,
        );
    }
    if (Object.keys(out.matchLabels).length === 0 && out.matchExpressions.length === 0)
      fail(node, at, 'must not be empty');
    return out;
  }
  if (!isMap(node))
    return fail(node, at, 'must be a label selector: {matchLabels, matchExpressions} or "k=v,…"');
  for (const pair of node.items) {
    const key = keyOf(pair);
    const field = `${at}.${key}`;
    if (key === 'matchLabels') {
      if (!isMap(pair.value)) fail(pair.value ?? pair.key, field, 'must be a mapping of labels');
      for (const lp of (pair.value as { items: Array<{ key: unknown; value: unknown }> }).items) {
        const k = keyOf(lp);
        const v = (lp.value as { value?: unknown } | null)?.value;
        if (typeof v !== 'string') fail(lp.value ?? lp.key, `${field}.${k}`, 'must be a string');
        checkKey(k, lp.key);
        checkValue(v as string, lp.value);
        out.matchLabels[k] = v as string;
      }
    } else if (key === 'matchExpressions') {
      if (!isSeq(pair.value))
        fail(pair.value ?? pair.key, field, 'must be a list of {key, operator, values}');
      for (const [i, e] of (pair.value as { items: unknown[] }).items.entries()) {
        const here = `${field}[${i}]`;
        if (!isMap(e)) fail(e, here, 'must be a mapping with key, operator and values');
        const expr = (e as Node).toJSON() as { key?: unknown; operator?: unknown; values?: unknown };
        if (typeof expr.key !== 'string') fail(e, `${here}.key`, 'is required');
        checkKey(expr.key as string, e);
        const op = expr.operator;
        if (op !== 'In' && op !== 'NotIn' && op !== 'Exists' && op !== 'DoesNotExist')
          fail(e, `${here}.operator`, 'must be In, NotIn, Exists or DoesNotExist');
        const values = expr.values ?? [];
        if (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))
          fail(e, `${here}.values`, 'must be a list of strings');
        const needs = op === 'In' || op === 'NotIn';
        if (needs !== (values as string[]).length > 0)
          fail(e, `${here}.values`, needs ? `is required with ${op}` : `must be empty with ${op}`);
        out.matchExpressions.push({
          key: expr.key as string,
          operator: op as LabelSelector['matchExpressions'][number]['operator'],
          values: values as string[],
        });
      }
    } else fail(pair.key, field, 'is not a known field');
  }
  return out;
}

/** Splits on commas outside parentheses. */
function splitTerms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** Whether a cluster's labels satisfy a selector. */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels)) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions) {
    const has = Object.hasOwn(labels, e.key);
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
    if (e.operator === 'In' && (!has || !e.values.includes(labels[e.key]!))) return false;
    if (e.operator === 'NotIn' && has && e.values.includes(labels[e.key]!)) return false;
  }
  return true;
}

/** A selector as kubectl prints it, for messages. */
export function selectorText(selector: LabelSelector): string {
  return [
    ...Object.entries(selector.matchLabels).map(([k, v]) => `${k}=${v}`),
    ...selector.matchExpressions.map((e) =>
      e.operator === 'Exists'
        ? e.key
        : e.operator === 'DoesNotExist'
          ? `!${e.key}`
          : `${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${e.values.join(',')})`,
    ),
  ].join(',');
}
