import { identityKey, type KubeObject, type ObjectIdentity, redactSecretValue } from '@flotilla/shared';
import type { FieldDrift } from './types.js';

/** One drifted field before it is stamped with `since`. */
export interface FieldDiff {
  path: string;
  desired: string;
  live: string;
}

export const MISSING = '<missing>';

/**
 * The merge key of a list, by the list's field name, as the strategic-merge-patch schema of
 * the core kinds declares it. `ports` is keyed by `containerPort` in a container and by `port`
 * in a Service; the first key the desired items all carry wins.
 */
const MERGE_KEYS: Record<string, string[]> = {
  containers: ['name'],
  initContainers: ['name'],
  ephemeralContainers: ['name'],
  env: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  volumeDevices: ['devicePath'],
  ports: ['containerPort', 'port'],
  imagePullSecrets: ['name'],
  hostAliases: ['ip'],
  topologySpreadConstraints: ['topologyKey'],
};

export interface DiffOptions {
  /** Merge keys by list field name; defaults to MERGE_KEYS. */
  mergeKeys?: Record<string, string[]>;
  /** Key of the HMAC that Secret values are shown as (see redactSecretValue); unkeyed without. */
  secretHashKey?: Uint8Array;
}

/**
 * The fields the desired object sets whose live value differs. Only desired leaves are
 * compared, so server defaults, status and metadata the server adds are never drift; lists
 * with a merge key are matched item by item (items only live has belong to someone else),
 * other lists as a whole. Quantities (`1Gi`, `500m`) and ints-as-strings compare by value.
 * A Secret's `data`/`stringData` is compared per key and reported redacted, never by value.
 * Pure: `live` undefined means the object is missing, which the caller reports as such.
 */
export function diffObject(desired: KubeObject, live: KubeObject, options: DiffOptions = {}): FieldDiff[] {
  const keys = options.mergeKeys ?? MERGE_KEYS;
  const out: FieldDiff[] = [];
  const isSecret = desired.kind === 'Secret' && splitGroup(desired.apiVersion) === '';
  for (const [field, want] of Object.entries(desired)) {
    if (field === 'apiVersion' || field === 'kind' || field === 'status') continue;
    if (field === 'metadata') {
      const meta = (want ?? {}) as Record<string, unknown>;
      const liveMeta = (live.metadata ?? {}) as Record<string, unknown>;
      for (const m of ['labels', 'annotations'] as const) {
        if (meta[m] !== undefined) compare(meta[m], liveMeta[m], `metadata.${m}`, m, keys, out);
      }
      continue;
    }
    if (isSecret && (field === 'data' || field === 'stringData')) continue;
    compare(want, (live as Record<string, unknown>)[field], field, field, keys, out);
  }
  if (isSecret) diffSecretData(desired, live, out, options.secretHashKey);
  return out;
}

function splitGroup(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function diffSecretData(desired: KubeObject, live: KubeObject, out: FieldDiff[], key?: Uint8Array): void {
  const redact = (v: string) => redactSecretValue(v, key);
  const want = new Map<string, string>();
  for (const [k, v] of Object.entries((desired.data ?? {}) as Record<string, unknown>)) {
    want.set(k, String(v ?? ''));
  }
  // stringData is write-only: the server folds it into data as base64, and it wins over data.
  for (const [k, v] of Object.entries((desired.stringData ?? {}) as Record<string, unknown>)) {
    want.set(k, Buffer.from(String(v ?? ''), 'utf8').toString('base64'));
  }
  const liveData = (live.data ?? {}) as Record<string, unknown>;
  for (const [k, v] of want) {
    const have = liveData[k];
    if (have === undefined || have === null) {
      out.push({ path: join('data', k), desired: redact(v), live: MISSING });
    } else if (normaliseBase64(String(have)) !== normaliseBase64(v)) {
      out.push({
        path: join('data', k),
        desired: redact(v),
        live: redact(String(have)),
      });
    }
  }
}

function normaliseBase64(s: string): string {
  return Buffer.from(s, 'base64').toString('base64');
}

/** A dotted path segment; keys that are not plain words are quoted: `data["app.properties"]`. */
function join(base: string, key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Empty desired maps and lists say nothing the server must keep (it drops them). */
function isEmpty(v: unknown): boolean {
  return (
    v === null || (Array.isArray(v) && v.length === 0) || (isPlainObject(v) && Object.keys(v).length === 0)
  );
}

function show(v: unknown): string {
  return v === undefined ? MISSING : JSON.stringify(v);
}

function compare(
  want: unknown,
  have: unknown,
  path: string,
  field: string,
  keys: Record<string, string[]>,
  out: FieldDiff[],
): void {
  if (want === undefined) return;
  if (have === undefined || have === null) {
    if (isEmpty(want)) return;
    out.push({ path, desired: show(want), live: MISSING });
    return;
  }
  if (isPlainObject(want)) {
    if (!isPlainObject(have)) {
      out.push({ path, desired: show(want), live: show(have) });
      return;
    }
    for (const [k, v] of Object.entries(want)) compare(v, have[k], join(path, k), k, keys, out);
    return;
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(have)) {
      out.push({ path, desired: show(want), live: show(have) });
      return;
    }
    const key = mergeKeyOf(field, want, keys);
    if (key) {
      for (const item of want as Record<string, unknown>[]) {
        const id = item[key];
        const match = have.find((h) => isPlainObject(h) && scalarEqual(h[key], id));
        const itemPath = `${path}[${key}=${String(id)}]`;
        if (match === undefined) out.push({ path: itemPath, desired: show(item), live: MISSING });
        else compare(item, match, itemPath, '', keys, out);
      }
      return;
    }
    if (!listEqual(want, have)) out.push({ path, desired: show(want), live: show(have) });
    return;
  }
  if (!scalarEqual(want, have)) out.push({ path, desired: show(want), live: show(have) });
}

function mergeKeyOf(field: string, want: unknown[], keys: Record<string, string[]>): string | undefined {
  const candidates = keys[field];
  if (!candidates || want.length === 0) return undefined;
  return candidates.find((k) => want.every((item) => isPlainObject(item) && item[k] !== undefined));
}

/** Whole-list equality where each desired item need only be contained in the live item at its index. */
function listEqual(want: unknown[], have: unknown[]): boolean {
  if (want.length !== have.length) return false;
  return want.every((w, i) => contained(w, have[i]));
}

function contained(want: unknown, have: unknown): boolean {
  if (isPlainObject(want)) {
    if (!isPlainObject(have)) return false;
    return Object.entries(want).every(([k, v]) =>
      v === undefined || (have[k] === undefined && isEmpty(v)) ? true : contained(v, have[k]),
    );
  }
  if (Array.isArray(want)) return Array.isArray(have) && listEqual(want, have);
  return scalarEqual(want, have);
}

/** Equal as Kubernetes means it: `"3"` and `3`, `1Gi` and `1073741824`, `500m` and `0.5`. */
export function scalarEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (typeof a === 'object' || typeof b === 'object') return false;
  if (typeof a === 'boolean' || typeof b === 'boolean') return String(a) === String(b);
  if (String(a) === String(b)) return true;
  const qa = parseQuantity(a);
  const qb = parseQuantity(b);
  return qa !== undefined && qb !== undefined && Math.abs(qa - qb) <= Math.abs(qa) * 1e-12;
}

const SUFFIX: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a Kubernetes quantity (`1.5Gi`, `250m`, `1e3`), or undefined for other text. */
export function parseQuantity(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$/.exec(v.trim());
  if (!m) return undefined;
  const base = Number(m[1]);
  if (m[2]) return base * 10 ** Number(m[2].slice(1));
  return base * (SUFFIX[m[3] ?? ''] ?? 1);
}

/**
 * Remembers when each drifted field was first seen, so `since` survives re-assessment and
 * a field that stops drifting forgets its time (it starts afresh if it drifts again). It
 * also carries the reconciler's diff options, so every assessment diffs the same way.
 */
export interface DriftClock {
  readonly diffOptions: DiffOptions;
  stamp(id: ObjectIdentity, diffs: FieldDiff[], now?: Date): FieldDrift[];
  forget(id: ObjectIdentity): void;
}

export function createDriftClock(diffOptions: DiffOptions = {}): DriftClock {
  const seen = new Map<string, Map<string, Date>>();
  return {
    diffOptions,
    stamp(id, diffs, now = new Date()) {
      const key = identityKey(id);
      const before = seen.get(key) ?? new Map<string, Date>();
      const after = new Map<string, Date>();
      const out = diffs.map((d) => {
        const since = before.get(d.path) ?? now;
        after.set(d.path, since);
        return { ...d, since };
      });
      if (after.size > 0) seen.set(key, after);
      else seen.delete(key);
      return out;
    },
    forget(id) {
      seen.delete(identityKey(id));
    },
  };
}
