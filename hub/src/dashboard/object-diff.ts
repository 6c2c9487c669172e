import { type Bundle, decodeEnvelope, type KubeObject } from '@flotilla/shared';
import { createTwoFilesPatch } from 'diff';
import { and, desc, eq, lte } from 'drizzle-orm';
import { stringify } from 'yaml';
import type { Db } from '../db/database.js';
import { bundles, clusterStatus } from '../db/schema.js';
import { type SecretValues, withSecretValuesShown } from '../secrets/secret-values.js';

/** What the agent reports for a whole object that is gone (see the agent's drift check). */
const WHOLE_OBJECT = '(object)';
const MISSING = '<missing>';

/** One object of a cluster, named as the status reports name it. */
export interface ObjectRef {
  group: string;
  kind: string;
  namespace: string;
  name: string;
}

/** One drifted field as the agent reported it: desired and live as JSON text, or `<missing>`, Secret values as hashes. */
export interface DriftField {
  field: string;
  desired: string;
  live: string;
}

/** A drifted object's desired and live state side by side, as far as the hub knows it. */
export interface ObjectDiff {
  /** The manifest from the bundle the cluster applied (Secret values as hashes), as YAML; null when the bundle lacks it. */
  desired: string | null;
  /** The same manifest with every drifted field at its live value, as YAML; null when the object is gone or unknown. */
  live: string | null;
  /** A unified diff from desired to live; empty when there is no drift. */
  patch: string;
  /** Drifted fields the hub could not place in the manifest (shown in the field table only). */
  unplaced: string[];
}

/** `ref` as the key the bundle's sources and the status rows use. */
export const refKey = (r: ObjectRef) => `${r.group}/${r.kind}/${r.namespace}/${r.name}`;

/** Parses `group/kind/namespace/name` (group and namespace may be empty). */
export function parseRef(text: string): ObjectRef | undefined {
  const parts = text.split('/');
  if (parts.length !== 4 || !parts[1] || !parts[3]) return undefined;
  return { group: parts[0]!, kind: parts[1], namespace: parts[2]!, name: parts[3] };
}

const sameRef = (o: KubeObject, r: ObjectRef) => {
  const [group] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : [''];
  return (
    group === r.group &&
    o.kind === r.kind &&
    (o.metadata?.namespace ?? '') === r.namespace &&
    o.metadata?.name === r.name
  );
};

/**
 * The bundle a cluster applied (its newest before its first report): what the agent compares
 * the live objects with, so the diff is against the desired state the drift was found against.
 */
export async function appliedBundle(db: Db, cluster: string): Promise<Bundle | undefined> {
  const [status] = await db
    .select({ applied: clusterStatus.appliedGeneration })
    .from(clusterStatus)
    .where(eq(clusterStatus.cluster, cluster));
  const [row] = await db
    .select({ envelope: bundles.envelope })
    .from(bundles)
    .where(
      and(
        eq(bundles.cluster, cluster),
        status?.applied != null ? lte(bundles.generation, status.applied) : undefined,
      ),
    )
    .orderBy(desc(bundles.generation))
    .limit(1);
  if (!row) return undefined;
  const payload = Buffer.from(decodeEnvelope(row.envelope).payload, 'base64');
  return JSON.parse(payload.toString('utf8')) as Bundle;
}

/**
 * Desired and live of one drifted object: the bundle's manifest, and the same manifest with
 * each drifted field set to the live value the agent reported. The hub keeps no copy of live
 * objects, so fields nobody drifted show their desired value on both sides.
 *
 * Secret values show by the one policy (secrets/secret-values.ts): the manifest's as hashes
 * under the hub's key; a drifted one as the agent reported it, desired and live hashed under
 * the agent's key (so they compare with each other, not with the hub's). The page is for an
 * identity with read-secrets; visibleTo turns each hash into `[redacted]` for anyone else.
 */
export function objectDiff(
  desiredObject: KubeObject | undefined,
  drift: readonly DriftField[],
  secretValues: SecretValues,
): ObjectDiff {
  const unplaced: string[] = [];
  if (!desiredObject) return { desired: null, live: null, patch: '', unplaced: drift.map((d) => d.field) };
  const base = withSecretValuesShown(desiredObject, secretValues);
  const desired = structuredClone(base);
  let live: KubeObject | null = structuredClone(base);
  for (const d of drift) {
    if (d.field === WHOLE_OBJECT) {
      live = null;
      continue;
    }
    const path = parsePath(d.field);
    if (!path) {
      unplaced.push(d.field);
      continue;
    }
    const placed =
      setAt(desired, path, reportedValue(d.desired)) && (!live || setAt(live, path, reportedValue(d.live)));
    if (!placed) unplaced.push(d.field);
  }
  const desiredText = stringify(desired);
  const liveText = live ? stringify(live) : '';
  const name = `${base.kind} ${base.metadata?.namespace ? `${base.metadata.namespace}/` : ''}${base.metadata?.name}`;
  const patch =
    desiredText === liveText
      ? ''
      : createTwoFilesPatch(
          `desired ${name}`,
          live ? `live ${name}` : '/dev/null',
          desiredText,
          liveText,
          '',
          '',
          {
            context: 4,
          },
        ).replace(/^=+\n/m, '');
  return {
    desired: desiredText,
    live: live ? liveText : null,
    patch: patch.slice(patch.indexOf('---')),
    unplaced,
  };
}

/** Finds the manifest of `ref` among a bundle's objects. */
export function findObject(bundle: Bundle | undefined, ref: ObjectRef): KubeObject | undefined {
  return bundle?.objects.find((o) => sameRef(o, ref));
}

type Step = { field: string } | { index: number } | { match: Record<string, string> } | { value: string };

const ABSENT = Symbol('absent');

function reportedValue(text: string): unknown {
  if (text === MISSING) return ABSENT;
  try {
    return JSON.parse(text);
  } catch {
    // A Secret value's hash, `[redacted …]`, is text.
    return text;
  }
}

/**
 * Parses the agent's field paths (`spec.template.spec.containers[name=web].image`,
 * `data["app.properties"]`, `spec.args[0]`, `metadata.finalizers[="x"]`); undefined when it cannot.
 */
export function parsePath(text: string): Step[] | undefined {
  const steps: Step[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '.') i++;
    if (text[i] === '[') {
      const close = findClose(text, i);
      if (close < 0) return undefined;
      const inner = text.slice(i + 1, close);
      i = close + 1;
      if (inner.startsWith('"')) {
        try {
          steps.push({ field: JSON.parse(inner) as string });
        } catch {
          return undefined;
        }
      } else if (inner.startsWith('=')) steps.push({ value: inner.slice(1) });
      else if (/^\d+$/.test(inner)) steps.push({ index: Number(inner) });
      else {
        const match: Record<string, string> = {};
        for (const pair of inner.split(',')) {
          const eq = pair.indexOf('=');
          if (eq <= 0) return undefined;
          match[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        steps.push({ match });
      }
      continue;
    }
    const m = /^[A-Za-z0-9_-]+/.exec(text.slice(i));
    if (!m) return undefined;
    steps.push({ field: m[0] });
    i += m[0].length;
  }
  return steps.length > 0 ? steps : undefined;
}

function findClose(text: string, open: number): number {
  let quoted = false;
  for (let j = open + 1; j < text.length; j++) {
    const c = text[j];
    if (c === '\\' && quoted) j++;
    else if (c === '"') quoted = !quoted;
    else if (c === ']' && !quoted) return j;
  }
  return -1;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const matches = (item: unknown, match: Record<string, string>) =>
  isObject(item) &&
  Object.entries(match).every(
    ([k, v]) => item[k] === v || JSON.stringify(item[k]) === v || String(item[k]) === v,
  );

/** Sets (or, for ABSENT, removes) the value at `path`, making the parents it needs; false when the path does not fit. */
function setAt(root: unknown, path: Step[], value: unknown): boolean {
  let cur: unknown = root;
  for (const [n, step] of path.entries()) {
    const last = n === path.length - 1;
    if ('field' in step) {
      if (!isObject(cur)) return false;
      if (last) {
        if (value === ABSENT) delete cur[step.field];
        else cur[step.field] = value;
        return true;
      }
      if (cur[step.field] === undefined) {
        if (value === ABSENT) return true;
        cur[step.field] =
          'index' in path[n + 1]! || 'match' in path[n + 1]! || 'value' in path[n + 1]! ? [] : {};
      }
      cur = cur[step.field];
      continue;
    }
    if (!Array.isArray(cur)) return false;
    let at: number;
    if ('index' in step) at = step.index;
    else if ('match' in step) at = cur.findIndex((item) => matches(item, step.match));
    else at = cur.findIndex((item) => JSON.stringify(item) === step.value);
    if (last) {
      if (value === ABSENT) {
        if (at >= 0) cur.splice(at, 1);
      } else if (at >= 0) cur[at] = value;
      else cur.push(value);
      return true;
    }
    if (at < 0) {
      if (value === ABSENT) return true;
      if (!('match' in step)) return false;
      cur.push({ ...step.match });
      at = cur.length - 1;
    }
    cur = cur[at];
  }
  return false;
}
