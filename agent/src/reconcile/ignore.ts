import {
  type IgnoreDifferences,
  InvalidError,
  type KubeObject,
  type ObjectIdentity,
  parseJsonPointer,
} from '@flotilla/shared';

/**
 * An annotation on a manifest naming fields another controller owns, as comma-separated JSON
 * pointers (`/spec/replicas,/spec/template/metadata/annotations/restartedAt`).
 */
export const IGNORE_ANNOTATION = 'flotilla.dev/ignore-differences';

/**
 * The JSON pointers to leave to the live object for one object: the environment's rules that
 * match it (group, kind and, when given, namespace and name) and its own annotation. Throws an
 * InvalidError naming the annotation when one of its pointers is malformed.
 */
export function ignoredPointers(
  id: ObjectIdentity,
  desired: KubeObject,
  rules: readonly IgnoreDifferences[] = [],
): string[][] {
  const out: string[][] = [];
  for (const r of rules) {
    if ((r.group ?? '') !== id.group || r.kind !== id.kind) continue;
    if (r.namespace !== undefined && r.namespace !== id.namespace) continue;
    if (r.name !== undefined && r.name !== id.name) continue;
    for (const p of r.jsonPointers) out.push(parseJsonPointer(p));
  }
  const text = desired.metadata.annotations?.[IGNORE_ANNOTATION];
  if (typeof text === 'string' && text.trim()) {
    for (const p of text.split(',')) {
      try {
        out.push(parseJsonPointer(p.trim()));
      } catch (err) {
        throw new InvalidError(
          `metadata.annotations["${IGNORE_ANNOTATION}"]`,
          err instanceof Error ? err.message : String(err),
          { cause: err },
        );
      }
    }
  }
  return out;
}

function container(v: unknown): Record<string, unknown> | unknown[] | undefined {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown> | unknown[]) : undefined;
}

function get(v: unknown, token: string): unknown {
  const c = container(v);
  if (!c) return undefined;
  if (Array.isArray(c)) return /^\d+$/.test(token) ? c[Number(token)] : undefined;
  return c[token];
}

/**
 * The manifest to apply and to dry-run against an existing object: at each ignored pointer the
 * live value replaces the desired one, or, where the live object has none, the desired value is
 * dropped. So the fields stay whatever their other owner (an HPA's `spec.replicas`) made them,
 * are never written over and never differ from the dry run. A missing object is created from
 * the manifest as written.
 */
export function withIgnored(
  desired: KubeObject,
  live: KubeObject | undefined,
  pointers: string[][],
): KubeObject {
  if (!live || pointers.length === 0) return desired;
  const out = structuredClone(desired);
  for (const tokens of pointers) {
    if (tokens.length === 0) continue;
    let want: unknown = out;
    let have: unknown = live;
    for (const t of tokens.slice(0, -1)) {
      want = get(want, t);
      have = get(have, t);
    }
    const parent = container(want);
    if (!parent) continue;
    const last = tokens[tokens.length - 1] as string;
    const liveValue = get(have, last);
    if (Array.isArray(parent)) {
      if (!/^\d+$/.test(last) || Number(last) >= parent.length) continue;
      if (liveValue === undefined) parent.splice(Number(last), 1);
      else parent[Number(last)] = structuredClone(liveValue);
    } else if (liveValue === undefined) delete parent[last];
    else parent[last] = structuredClone(liveValue);
  }
  return out;
}
