import { createHash } from 'node:crypto';
import type { Json } from './json.js';
import { apiVersionOf, GROUP_ORDER, type ResourceType, VERBS } from './resources.js';
import { kindSchema } from './schema.js';

/** The Kubernetes version the server reports; matches the kubectl installed here. */
export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-flotilla',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
};

/** Group versions in discovery order: core first, then the built-in groups, then CRD groups by name. */
export function groupVersions(types: ResourceType[]): { group: string; versions: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const t of types) {
    const vs = groups.get(t.group) ?? [];
    if (!vs.includes(t.version)) vs.push(t.version);
    groups.set(t.group, vs);
  }
  const rank = (g: string) => {
    const i = GROUP_ORDER.indexOf(g);
    return i < 0 ? GROUP_ORDER.length : i;
  };
  return [...groups.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([group, versions]) => ({ group, versions: versions.sort(compareVersions) }));
}

/** Kubernetes version priority: v2 > v1 > v1beta2 > v1beta1 > v1alpha1. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = v.match(/^v(\d+)(?:(alpha|beta)(\d+))?$/);
    if (!m) return [0, 0, 0];
    const stage = m[2] === 'alpha' ? 1 : m[2] === 'beta' ? 2 : 3;
    return [stage, Number(m[1]), Number(m[3] ?? 0)];
  };
  const [sa, ma, na] = parse(a);
  const [sb, mb, nb] = parse(b);
  return sb! - sa! || mb! - ma! || nb! - na!;
}

export function apiVersions(hostPort: string): Json {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: hostPort }],
  };
}

function groupEntry(group: string, versions: string[]): Json {
  const vs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: vs, preferredVersion: vs[0] };
}

export function apiGroupList(types: ResourceType[]): Json {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groupVersions(types)
      .filter((g) => g.group !== '')
      .map((g) => groupEntry(g.group, g.versions)),
  };
}

export function apiGroup(types: ResourceType[], group: string): Json | undefined {
  const g = groupVersions(types).find((x) => x.group === group);
  if (!g || group === '') return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g.group, g.versions) };
}

function storageVersionHash(t: ResourceType): string {
  return createHash('sha256').update(`${t.group}/${t.version}/${t.kind}`).digest('base64').slice(0, 11);
}

/** The legacy `APIResourceList` of one group-version, with status and scale subresources. */
export function apiResourceList(types: ResourceType[], group: string, version: string): Json | undefined {
  const inGv = types.filter((t) => t.group === group && t.version === version);
  if (inGv.length === 0) return undefined;
  const resources: Json[] = [];
  for (const t of inGv) {
    const r: Json = {
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: VERBS,
    };
    if (t.shortNames.length) r.shortNames = t.shortNames;
    if (t.categories.length) r.categories = t.categories;
    r.storageVersionHash = storageVersionHash(t);
    resources.push(r);
    if (t.scale) {
      resources.push({
        name: `${t.plural}/scale`,
        singularName: '',
        namespaced: t.namespaced,
        group: 'autoscaling',
        version: 'v1',
        kind: 'Scale',
        verbs: ['get', 'patch', 'update'],
      });
    }
    if (t.status) {
      resources.push({
        name: `${t.plural}/status`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['get', 'patch', 'update'],
      });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: apiVersionOf({ group, version }),
    resources,
  };
}

/** Aggregated discovery (`APIGroupDiscoveryList`), which kubectl 1.30+ asks /api and /apis for. */
export function aggregatedDiscovery(types: ResourceType[], legacy: boolean, apiVersion: string): Json {
  const items = groupVersions(types)
    .filter((g) => (legacy ? g.group === '' : g.group !== ''))
    .map((g) => ({
      metadata: { name: g.group, creationTimestamp: null },
      versions: g.versions.map((v) => ({
        version: v,
        resources: types
          .filter((t) => t.group === g.group && t.version === v)
          .map((t) => {
            const r: Json = {
              resource: t.plural,
              responseKind: { group: t.group, version: t.version, kind: t.kind },
              scope: t.namespaced ? 'Namespaced' : 'Cluster',
              singularResource: t.singular,
              verbs: VERBS,
            };
            if (t.shortNames.length) r.shortNames = t.shortNames;
            if (t.categories.length) r.categories = t.categories;
            const subs: Json[] = [];
            if (t.scale) {
              subs.push({
                subresource: 'scale',
                responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' },
                verbs: ['get', 'patch', 'update'],
              });
            }
            if (t.status) {
              subs.push({
                subresource: 'status',
                responseKind: { group: t.group, version: t.version, kind: t.kind },
                verbs: ['get', 'patch', 'update'],
              });
            }
            if (subs.length) r.subresources = subs;
            return r;
          }),
        freshness: 'Current',
      })),
    }));
  return { kind: 'APIGroupDiscoveryList', apiVersion, metadata: {}, items };
}

/** `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` if the client accepts it. */
export function negotiateAggregated(accept: string | undefined): string | undefined {
  if (!accept) return undefined;
  for (const part of accept.split(',')) {
    const p = part.replace(/\s/g, '');
    if (p.includes('as=APIGroupDiscoveryList') && p.includes('g=apidiscovery.k8s.io')) {
      const v = p.match(/;v=(v2beta1|v2)(;|$)/)?.[1];
      if (v) return v;
    }
  }
  return undefined;
}

const PATCH_TYPES = [
  'application/apply-patch+yaml',
  'application/json-patch+json',
  'application/merge-patch+json',
];

function param(name: string, description: string): Json {
  return {
    name,
    in: 'query',
    description,
    schema: { type: name === 'force' ? 'boolean' : 'string', uniqueItems: true },
  };
}

/** The OpenAPI v3 index: one document per served group-version. */
export function openApiV3Index(types: ResourceType[]): Json {
  const paths: Record<string, Json> = {};
  for (const g of groupVersions(types)) {
    for (const v of g.versions) {
      const key = g.group ? `apis/${g.group}/${v}` : `api/${v}`;
      paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${openApiHash(types, g.group, v)}` };
    }
  }
  return { paths };
}

function openApiHash(types: ResourceType[], group: string, version: string): string {
  return createHash('sha512')
    .update(JSON.stringify(types.filter((t) => t.group === group && t.version === version)))
    .digest('hex')
    .slice(0, 128)
    .toUpperCase();
}

function schemaName(t: ResourceType): string {
  if (t.custom) return `${t.group.split('.').reverse().join('.')}.${t.version}.${t.kind}`;
  const g = t.group === '' ? 'core' : t.group.replace(/\.k8s\.io$/, '');
  return t.kind === 'CustomResourceDefinition'
    ? `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${t.version}.${t.kind}`
    : `io.k8s.api.${g}.${t.version}.${t.kind}`;
}

/**
 * A small OpenAPI v3 document for one group-version. It declares the operations with their
 * group-version-kind and query parameters, which is what kubectl reads to decide that the server
 * supports dryRun and fieldValidation. It does not advertise strategic merge patch, so kubectl
 * computes strategic patches of built-in kinds from its compiled-in types (the same tags the real
 * schema carries) instead of from a schema this server would have to reproduce in full.
 */
export function openApiV3Document(types: ResourceType[], group: string, version: string): Json | undefined {
  const inGv = types.filter((t) => t.group === group && t.version === version);
  if (inGv.length === 0) return undefined;
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const paths: Record<string, Json> = {};
  const schemas: Record<string, Json> = {};
  for (const t of inGv) {
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    const ref = { $ref: `#/components/schemas/${schemaName(t)}` };
    const ok = { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } };
    const write = [
      param('dryRun', 'dry run'),
      param('fieldManager', 'field manager'),
      param('fieldValidation', 'field validation'),
    ];
    const op = (action: string, extra: Json = {}) => ({
      operationId: `${action}${t.kind}`,
      responses: ok,
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
      ...extra,
    });
    const body = (contentTypes: string[]) => ({
      requestBody: {
        content: Object.fromEntries(
          contentTypes.map((c) => [c, { schema: c === 'application/json' ? ref : { type: 'object' } }]),
        ),
        required: true,
      },
    });
    const base = t.namespaced ? `${prefix}/namespaces/{namespace}/${t.plural}` : `${prefix}/${t.plural}`;
    paths[base] = {
      get: op('list'),
      post: op('post', { parameters: write, ...body(['application/json']) }),
      delete: op('deletecollection'),
    };
    const item = {
      get: op('get'),
      put: op('put', { parameters: write, ...body(['application/json']) }),
      patch: op('patch', { parameters: [...write, param('force', 'force')], ...body(PATCH_TYPES) }),
      delete: op('delete', { parameters: [param('dryRun', 'dry run')] }),
    };
    paths[`${base}/{name}`] = item;
    if (t.status) paths[`${base}/{name}/status`] = item;
    // list and map facts (list-map keys, sets, atomic maps) from schema.ts; other fields are not described
    const facts = t.custom ? {} : (kindSchema(t.kind).properties ?? {});
    const open = (field: string) => ({
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
      ...(facts[field] ?? {}),
    });
    schemas[schemaName(t)] = {
      type: 'object',
      description: `${t.kind} (served by the Flotilla test API server; only list and map semantics are described)`,
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: open('metadata'),
        spec: open('spec'),
        status: open('status'),
      },
      'x-kubernetes-group-version-kind': [gvk],
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion },
    paths,
    components: { schemas },
  };
}
