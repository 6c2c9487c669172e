import type { Json } from './json.js';
import { canonicalQuantity } from './quantity.js';
import type { ResourceType } from './resources.js';

/**
 * What a real API server's round trip through its Go types does to an object it stores, for the
 * workload fields manifests commonly carry: zero values of `omitempty` fields are not stored
 * (`hostNetwork: false`, `paused: false`, `env[].value: ""`, empty `nodeSelector`), and resource
 * quantities are stored in canonical form (`cpu: 1000m` → `1`, `memory: 1024Mi` → `1Gi`). Pointer
 * fields keep their zeros (`replicas: 0`), and empty structs stay (`resources: {}`), as in Go.
 * Mutates and returns `obj`.
 */
export function normalizeStored(type: ResourceType, obj: Json): Json {
  if (type.custom) return obj;
  const spec = obj.spec;
  switch (type.kind) {
    case 'Pod':
      podSpec(spec, 'spec');
      break;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
      omit(spec, ['minReadySeconds', 'paused']);
      template(spec?.template, 'spec.template');
      for (const [i, c] of (spec?.volumeClaimTemplates ?? []).entries()) {
        pvcSpec(c?.spec, `spec.volumeClaimTemplates[${i}].spec`);
      }
      break;
    case 'Job':
      template(spec?.template, 'spec.template');
      break;
    case 'CronJob':
      template(spec?.jobTemplate?.spec?.template, 'spec.jobTemplate.spec.template');
      break;
    case 'Service':
      service(spec);
      break;
    case 'PersistentVolumeClaim':
      pvcSpec(spec, 'spec');
      break;
    case 'ConfigMap':
    case 'Secret':
      omit(obj, ['data', 'binaryData', 'stringData']);
      break;
  }
  return obj;
}

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deletes the named fields when they hold Go's zero value: '', 0, false, null, [] or an empty map. */
function omit(obj: Json, fields: string[]): void {
  if (!isObject(obj)) return;
  for (const f of fields) {
    const v = obj[f];
    if (
      v === '' ||
      v === 0 ||
      v === false ||
      v === null ||
      (Array.isArray(v) && v.length === 0) ||
      (isObject(v) && Object.keys(v).length === 0)
    ) {
      delete obj[f];
    }
  }
}

function quantities(map: Json, path: string): void {
  if (!isObject(map)) return;
  for (const [k, v] of Object.entries(map)) map[k] = canonicalQuantity(v, `${path}.${k}`);
}

function resources(r: Json, path: string): void {
  if (!isObject(r)) return;
  quantities(r.limits, `${path}.limits`);
  quantities(r.requests, `${path}.requests`);
  omit(r, ['limits', 'requests', 'claims']);
}

function template(t: Json, path: string): void {
  if (!isObject(t)) return;
  omit(t.metadata, ['labels', 'annotations', 'name', 'namespace', 'generateName']);
  podSpec(t.spec, `${path}.spec`);
}

function container(c: Json, path: string): void {
  if (!isObject(c)) return;
  omit(c, [
    'image',
    'workingDir',
    'terminationMessagePath',
    'terminationMessagePolicy',
    'imagePullPolicy',
    'stdin',
    'stdinOnce',
    'tty',
    'command',
    'args',
    'ports',
    'envFrom',
    'env',
    'volumeMounts',
    'volumeDevices',
    'resizePolicy',
  ]);
  resources(c.resources, `${path}.resources`);
  for (const p of c.ports ?? []) omit(p, ['name', 'hostPort', 'hostIP']);
  for (const e of c.env ?? []) omit(e, ['value']);
  for (const m of c.volumeMounts ?? []) omit(m, ['readOnly', 'subPath', 'subPathExpr']);
  for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe])
    omit(probe, ['initialDelaySeconds']);
}

function podSpec(spec: Json, path: string): void {
  if (!isObject(spec)) return;
  omit(spec, [
    'dnsPolicy',
    'serviceAccountName',
    'serviceAccount',
    'nodeName',
    'hostNetwork',
    'hostPID',
    'hostIPC',
    'hostname',
    'subdomain',
    'schedulerName',
    'priorityClassName',
    'nodeSelector',
    'overhead',
    'volumes',
    'initContainers',
    'ephemeralContainers',
    'imagePullSecrets',
    'tolerations',
    'hostAliases',
    'readinessGates',
    'topologySpreadConstraints',
    'schedulingGates',
    'resourceClaims',
  ]);
  for (const [list, items] of [
    ['containers', spec.containers],
    ['initContainers', spec.initContainers],
  ] as const) {
    for (const [i, c] of ((items as Json[] | undefined) ?? []).entries())
      container(c, `${path}.${list}[${i}]`);
  }
  quantities(spec.overhead, `${path}.overhead`);
  resources(spec.resources, `${path}.resources`);
  for (const [i, v] of ((spec.volumes as Json[] | undefined) ?? []).entries()) {
    if (isObject(v?.emptyDir) && v.emptyDir.sizeLimit !== undefined) {
      v.emptyDir.sizeLimit = canonicalQuantity(
        v.emptyDir.sizeLimit,
        `${path}.volumes[${i}].emptyDir.sizeLimit`,
      );
    }
    if (isObject(v?.emptyDir)) omit(v.emptyDir, ['medium']);
  }
}

function service(spec: Json): void {
  if (!isObject(spec)) return;
  omit(spec, [
    'selector',
    'loadBalancerIP',
    'externalName',
    'externalTrafficPolicy',
    'healthCheckNodePort',
    'publishNotReadyAddresses',
    'externalIPs',
    'loadBalancerSourceRanges',
  ]);
  for (const p of spec.ports ?? []) omit(p, ['name', 'nodePort']);
}

function pvcSpec(spec: Json, path: string): void {
  if (!isObject(spec)) return;
  resources(spec.resources, `${path}.resources`);
}
