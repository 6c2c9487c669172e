import type { KubeObject } from '@flotilla/shared';

/**
 * managedFields' FieldsV1: a tree whose keys are path elements as the API server spells them
 * (`f:spec`, `k:{"containerPort":53,"protocol":"UDP"}`, `v:"finalizer"`, `i:0`) and `.` for "the
 * item itself". The keys of `k:` elements are the list's map keys from the server's own schema
 * (`x-kubernetes-list-map-keys`), so reading paths from here needs no table of list keys.
 */
export interface FieldsV1 {
  [element: string]: FieldsV1;
}

/** One entry of `metadata.managedFields`. */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  fieldsType?: string;
  fieldsV1?: FieldsV1;
  subresource?: string;
}

export function managedFieldsOf(obj: KubeObject | undefined): ManagedFieldsEntry[] {
  const list = obj?.metadata?.managedFields;
  return Array.isArray(list) ? (list as ManagedFieldsEntry[]) : [];
}

/** The names of every manager of the object, each once, in the server's order. */
export function managersOf(obj: KubeObject | undefined): string[] {
  return [...new Set(managedFieldsOf(obj).map((m) => m.manager ?? '(unnamed)'))];
}

/** The fields `manager` owns through server-side apply of the main resource (not a subresource). */
export function appliedFieldsOf(obj: KubeObject | undefined, manager: string): FieldsV1 | undefined {
  const entry = managedFieldsOf(obj).find(
    (m) => m.manager === manager && m.operation === 'Apply' && !m.subresource,
  );
  return entry?.fieldsV1;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Structural equality of JSON values, key order ignored. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isPlainObject(a)) {
    if (!isPlainObject(b)) return false;
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => jsonEqual(a[k], b[k]));
  }
  return false;
}

/** The value one path element selects inside `value`, undefined when absent. */
export function childAt(value: unknown, element: string): unknown {
  if (element.startsWith('f:')) return isPlainObject(value) ? value[element.slice(2)] : undefined;
  if (!Array.isArray(value)) return undefined;
  if (element.startsWith('k:')) {
    const key = JSON.parse(element.slice(2)) as Record<string, unknown>;
    return value.find(
      (item) => isPlainObject(item) && Object.entries(key).every(([k, v]) => jsonEqual(item[k], v)),
    );
  }
  if (element.startsWith('v:')) {
    const wanted = JSON.parse(element.slice(2)) as unknown;
    return value.find((item) => jsonEqual(item, wanted));
  }
  if (element.startsWith('i:')) return value[Number(element.slice(2))];
  return undefined;
}

/** The value at a FieldsV1 path (a list of elements), undefined when absent. */
export function valueAtPath(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const el of path) {
    if (cur === undefined) return undefined;
    cur = childAt(cur, el);
  }
  return cur;
}

/** A dotted path segment; keys that are not plain words are quoted: `data["app.properties"]`. */
function field(base: string, key: string): string {
  const plain = /^[A-Za-z0-9_-]+$/.test(key);
  if (!base) return plain ? key : `[${JSON.stringify(key)}]`;
  return plain ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}

/**
 * A FieldsV1 path for people: `spec.template.spec.containers[name=web].ports[containerPort=53,protocol=UDP]`,
 * `metadata.finalizers[="example.com/x"]`, `spec.args[0]`.
 */
export function formatPath(path: readonly string[]): string {
  let out = '';
  for (const el of path) {
    if (el.startsWith('f:')) out = field(out, el.slice(2));
    else if (el.startsWith('k:')) {
      const key = JSON.parse(el.slice(2)) as Record<string, unknown>;
      const parts = Object.entries(key).map(
        ([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
      );
      out += `[${parts.join(',')}]`;
    } else if (el.startsWith('v:')) out += `[=${el.slice(2)}]`;
    else if (el.startsWith('i:')) out += `[${el.slice(2)}]`;
  }
  return out;
}

/** One managed field whose value in `a` differs from its value in `b` (undefined: absent). */
export interface ManagedDifference {
  path: string[];
  a: unknown;
  b: unknown;
}

/**
 * The fields of `tree` whose values differ between `a` and `b`, each reported once at the
 * highest path where one side lacks the field altogether (a missing container is one
 * difference, not one per field of it). Fields outside the tree are never compared.
 */
export function managedDifferences(tree: FieldsV1, a: unknown, b: unknown): ManagedDifference[] {
  const out: ManagedDifference[] = [];
  const walk = (node: FieldsV1, va: unknown, vb: unknown, path: string[]) => {
    for (const [el, sub] of Object.entries(node)) {
      if (el === '.') continue;
      const p = [...path, el];
      const ca = childAt(va, el);
      const cb = childAt(vb, el);
      const nested = Object.keys(sub ?? {}).some((k) => k !== '.');
      if (nested && ca !== undefined && cb !== undefined) walk(sub, ca, cb, p);
      else if (!jsonEqual(ca, cb)) out.push({ path: p, a: ca, b: cb });
    }
  };
  walk(tree, a, b, []);
  return out;
}
