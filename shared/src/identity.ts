import { InvalidError } from './errors.js';

/** The identity of a Kubernetes object: what makes two manifests "the same object". */
export interface ObjectIdentity {
  /** API group; empty for the core group. */
  group: string;
  version: string;
  kind: string;
  /** Empty for cluster-scoped objects. */
  namespace: string;
  name: string;
}

/** The minimal shape of a Kubernetes manifest. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** Reads an object's identity; throws naming the missing field. */
export function identityOf(obj: unknown, where = 'object'): ObjectIdentity {
  const o = obj as Partial<KubeObject> | null;
  if (!o || typeof o !== 'object') throw new InvalidError(where, 'is not an object');
  if (typeof o.apiVersion !== 'string' || !o.apiVersion)
    throw new InvalidError(`${where}: apiVersion`, 'is required');
  if (typeof o.kind !== 'string' || !o.kind) throw new InvalidError(`${where}: kind`, 'is required');
  const name = o.metadata?.name;
  if (typeof name !== 'string' || !name)
    throw new InvalidError(`${where}: metadata.name`, `is required (${o.kind})`);
  const ns = o.metadata?.namespace;
  return {
    ...splitApiVersion(o.apiVersion),
    kind: o.kind,
    namespace: typeof ns === 'string' ? ns : '',
    name,
  };
}

/** A stable key: version-independent, since one object may be served at several versions. */
export function identityKey(id: ObjectIdentity): string {
  return `${id.group}/${id.kind}/${id.namespace}/${id.name}`;
}

/** The subject of a message about an object: `apps/v1 Deployment shop/web`. */
export function formatIdentity(id: ObjectIdentity): string {
  const gv = id.group ? `${id.group}/${id.version}` : id.version;
  return `${gv} ${id.kind} ${id.namespace ? `${id.namespace}/` : ''}${id.name}`;
}
