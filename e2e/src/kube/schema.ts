/**
 * The little schema knowledge the server needs: which lists merge by key (strategic merge patch
 * and server-side apply) and which maps are atomic. Real servers take this from OpenAPI; the
 * built-in kinds' tags are reproduced here for the fields GitOps manifests use. Custom resources
 * get atomic lists, as the real server gives CRDs without x-kubernetes-list-type.
 */

const CONTAINER_LISTS = new Set(['containers', 'initContainers', 'ephemeralContainers']);

const BY_FIELD: Record<string, string[]> = {
  env: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  volumeDevices: ['devicePath'],
  imagePullSecrets: ['name'],
  hostAliases: ['ip'],
  conditions: ['type'],
  ownerReferences: ['uid'],
  topologySpreadConstraints: ['topologyKey', 'whenUnsatisfiable'],
  resourceClaims: ['name'],
  schedulingGates: ['name'],
};

/** Key fields of the list at `path` (field names from the object root), for server-side apply. */
export function listMapKeys(kind: string, path: string[], custom = false): string[] | undefined {
  if (custom && !(path[0] === 'metadata')) return undefined;
  const field = path[path.length - 1] ?? '';
  const parent = path[path.length - 2] ?? '';
  if (CONTAINER_LISTS.has(field)) return ['name'];
  if (field === 'ports' && CONTAINER_LISTS.has(parent)) return ['containerPort', 'protocol'];
  if (field === 'ports' && kind === 'Service' && path.length === 2) return ['port', 'protocol'];
  return BY_FIELD[field];
}

/** The strategic-merge-patch merge key of the list at `path`, if it merges by key. */
export function listMergeKey(kind: string, path: string[]): string | undefined {
  const field = path[path.length - 1] ?? '';
  const parent = path[path.length - 2] ?? '';
  if (field === 'ports' && CONTAINER_LISTS.has(parent)) return 'containerPort';
  if (field === 'ports' && kind === 'Service' && path.length === 2) return 'port';
  return listMapKeys(kind, path)?.[0];
}

/** Lists of strings that are sets (`v:` elements in managedFields). */
export function isSetList(path: string[]): boolean {
  return path.length === 2 && path[0] === 'metadata' && path[1] === 'finalizers';
}

/** Maps owned as a whole (`x-kubernetes-map-type: atomic`), e.g. label selectors. */
export function isAtomicMap(path: string[]): boolean {
  const field = path[path.length - 1];
  return field === 'selector' || field === 'nodeSelectorTerms';
}

/** Defaults of key fields, so that `{containerPort: 80}` and `{containerPort: 80, protocol: TCP}` are one item. */
export function keyDefault(field: string): unknown {
  return field === 'protocol' ? 'TCP' : undefined;
}
