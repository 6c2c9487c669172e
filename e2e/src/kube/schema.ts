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

/** The fields of a container that hold keyed lists. */
const CONTAINER_LIST_FIELDS = ['ports', 'env', 'volumeMounts', 'volumeDevices'];
/** The fields of a pod spec that hold keyed lists. */
const POD_LIST_FIELDS = [
  'containers',
  'initContainers',
  'ephemeralContainers',
  'volumes',
  'imagePullSecrets',
  'hostAliases',
  'topologySpreadConstraints',
  'resourceClaims',
  'schedulingGates',
];
/** Where each built-in kind keeps its pod spec. */
const POD_SPEC_AT: Record<string, string[]> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};
const WITH_SELECTOR = new Set(['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'Service']);
const WITH_CONDITIONS = new Set([
  'Pod',
  'Deployment',
  'ReplicaSet',
  'StatefulSet',
  'DaemonSet',
  'Job',
  'Namespace',
  'Service',
  'PersistentVolumeClaim',
  'CustomResourceDefinition',
]);

/** Every path of a built-in kind where the table above says something. */
function factPaths(kind: string): string[][] {
  const paths: string[][] = [
    ['metadata', 'ownerReferences'],
    ['metadata', 'finalizers'],
  ];
  if (WITH_CONDITIONS.has(kind)) paths.push(['status', 'conditions']);
  if (WITH_SELECTOR.has(kind)) paths.push(['spec', 'selector']);
  if (kind === 'Service') paths.push(['spec', 'ports']);
  const pod = POD_SPEC_AT[kind];
  if (pod) {
    for (const f of POD_LIST_FIELDS) {
      paths.push([...pod, f]);
      if (CONTAINER_LISTS.has(f)) for (const c of CONTAINER_LIST_FIELDS) paths.push([...pod, f, c]);
    }
  }
  return paths;
}

type SchemaNode = Record<string, unknown> & { properties?: Record<string, SchemaNode>; items?: SchemaNode };

/**
 * The OpenAPI v3 schema of a built-in kind as far as the list and map facts above go: the same
 * `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-patch-merge-key` and
 * `x-kubernetes-map-type` the real server's schema carries at those paths, nested as in the
 * object. So a client asks the server for list keys instead of keeping its own table, and this
 * table is the only one.
 */
export function kindSchema(kind: string): SchemaNode {
  const root: SchemaNode = { type: 'object', properties: {} };
  for (const path of factPaths(kind)) {
    let node = root;
    for (let i = 0; i < path.length; i++) {
      const field = path[i]!;
      const here = path.slice(0, i + 1);
      node.properties ??= {};
      let child = node.properties[field];
      if (!child) {
        const keys = listMapKeys(kind, here);
        if (keys) {
          child = {
            type: 'array',
            items: { type: 'object', properties: {} },
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': keys,
            'x-kubernetes-patch-merge-key': listMergeKey(kind, here),
            'x-kubernetes-patch-strategy': 'merge',
          };
        } else if (isSetList(here)) {
          child = { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'set' };
        } else if (isAtomicMap(here)) {
          child = { type: 'object', 'x-kubernetes-map-type': 'atomic' };
        } else child = { type: 'object', properties: {} };
        node.properties[field] = child;
      }
      node = child.items ?? child;
    }
  }
  return root;
}
