import type { Json } from './json.js';

/**
 * The resource types the test server serves: the built-in kinds GitOps applies, plus one per
 * served version of every CustomResourceDefinition in the store. Everything that routes,
 * discovers or validates looks a type up here, so a kind unknown here is unknown everywhere.
 */
export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  /** Lower-case plural, the URL segment. */
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Whether `/status` is a separate subresource (main-resource writes then keep the old status). */
  status: boolean;
  /** Whether `/scale` is served (autoscaling/v1 Scale over spec.replicas). */
  scale: boolean;
  /** Whether the real server tracks metadata.generation for this type. */
  generation: boolean;
  /** True for types that come from a CRD. */
  custom: boolean;
  /** For custom types: the CRD's printer columns, if any. */
  printerColumns?: {
    name: string;
    type: string;
    jsonPath: string;
    description?: string;
    priority?: number;
  }[];
}

export const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function t(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  extra: Partial<ResourceType> = {},
): ResourceType {
  return {
    group,
    version,
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames: [],
    categories: [],
    status: false,
    scale: false,
    generation: false,
    custom: false,
    ...extra,
  };
}

const workload = { status: true, scale: true, generation: true, categories: ['all'] };

/** Built-in kinds served at their stable versions. */
export const BUILTIN_TYPES: readonly ResourceType[] = [
  t('', 'v1', 'Namespace', 'namespaces', false, { shortNames: ['ns'], status: true }),
  t('', 'v1', 'ConfigMap', 'configmaps', true, { shortNames: ['cm'] }),
  t('', 'v1', 'Secret', 'secrets', true),
  t('', 'v1', 'Service', 'services', true, { shortNames: ['svc'], status: true, categories: ['all'] }),
  t('', 'v1', 'ServiceAccount', 'serviceaccounts', true, { shortNames: ['sa'] }),
  t('', 'v1', 'Pod', 'pods', true, { shortNames: ['po'], status: true, categories: ['all'] }),
  t('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', true, { shortNames: ['pvc'], status: true }),
  t('', 'v1', 'Event', 'events', true, { shortNames: ['ev'] }),
  t('apps', 'v1', 'Deployment', 'deployments', true, { ...workload, shortNames: ['deploy'] }),
  t('apps', 'v1', 'StatefulSet', 'statefulsets', true, { ...workload, shortNames: ['sts'] }),
  t('apps', 'v1', 'DaemonSet', 'daemonsets', true, { ...workload, scale: false, shortNames: ['ds'] }),
  t('apps', 'v1', 'ReplicaSet', 'replicasets', true, { ...workload, shortNames: ['rs'] }),
  t('batch', 'v1', 'Job', 'jobs', true, { status: true, generation: true, categories: ['all'] }),
  t('batch', 'v1', 'CronJob', 'cronjobs', true, {
    status: true,
    generation: true,
    shortNames: ['cj'],
    categories: ['all'],
  }),
  t('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true, {
    shortNames: ['ing'],
    status: true,
    generation: true,
  }),
  t('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true, {
    shortNames: ['netpol'],
    generation: true,
  }),
  t('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true),
  t('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false),
  t('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true),
  t('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
  t('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, {
    shortNames: ['crd', 'crds'],
    status: true,
    generation: true,
  }),
];

/** Preferred group order in discovery, like the real server's (core, apps, batch, ...). */
export const GROUP_ORDER = [
  '',
  'apps',
  'batch',
  'networking.k8s.io',
  'rbac.authorization.k8s.io',
  'apiextensions.k8s.io',
];

/** The resource types a served CRD adds (one per served version). Not yet Established CRDs add none. */
export function typesFromCrd(crd: Record<string, Json>): ResourceType[] {
  const spec = crd.spec ?? {};
  const names = spec.names ?? {};
  const out: ResourceType[] = [];
  for (const v of spec.versions ?? []) {
    if (!v.served) continue;
    out.push(
      t(spec.group, v.name, names.kind, names.plural, spec.scope !== 'Cluster', {
        singular: names.singular ?? String(names.kind).toLowerCase(),
        shortNames: names.shortNames ?? [],
        categories: names.categories ?? [],
        status: Boolean(v.subresources?.status),
        scale: Boolean(v.subresources?.scale),
        generation: true,
        custom: true,
        printerColumns: v.additionalPrinterColumns,
      }),
    );
  }
  return out;
}

/** `apps/v1` or `v1`. */
export function apiVersionOf(type: Pick<ResourceType, 'group' | 'version'>): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}
