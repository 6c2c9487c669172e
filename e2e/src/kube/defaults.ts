import { invalid, type StatusCause } from './errors.js';
import type { Json } from './json.js';
import type { ResourceType } from './resources.js';

/**
 * Fills in what the real API server defaults, so that a client comparing its manifest with the
 * live object sees the same extra fields it would see on a cluster ("values the API server
 * defaults are not drift"). Mutates and returns `obj`.
 */
export function applyDefaults(type: ResourceType, obj: Json): Json {
  if (type.custom) return obj;
  const spec = obj.spec;
  switch (type.kind) {
    case 'Namespace':
      obj.metadata.labels = {
        ...(obj.metadata.labels ?? {}),
        'kubernetes.io/metadata.name': obj.metadata.name,
      };
      // the real server sets this finalizer on every namespace it creates: contents go before the namespace
      if (!spec?.finalizers) obj.spec = { ...(spec ?? {}), finalizers: ['kubernetes'] };
      break;
    case 'Secret':
      obj.type ??= 'Opaque';
      if (obj.stringData) {
        obj.data ??= {};
        for (const [k, v] of Object.entries(obj.stringData))
          obj.data[k] = Buffer.from(String(v)).toString('base64');
        delete obj.stringData;
      }
      break;
    case 'Service':
      obj.spec ??= {};
      defaultService(obj.spec);
      break;
    case 'Pod':
      obj.spec ??= {};
      defaultPodSpec(obj.spec);
      break;
    case 'PersistentVolumeClaim':
      obj.spec ??= {};
      obj.spec.volumeMode ??= 'Filesystem';
      break;
    case 'Deployment':
      obj.spec ??= {};
      obj.spec.replicas ??= 1;
      obj.spec.revisionHistoryLimit ??= 10;
      obj.spec.progressDeadlineSeconds ??= 600;
      obj.spec.strategy ??= {};
      obj.spec.strategy.type ??= 'RollingUpdate';
      if (obj.spec.strategy.type === 'RollingUpdate') {
        obj.spec.strategy.rollingUpdate ??= {};
        obj.spec.strategy.rollingUpdate.maxUnavailable ??= '25%';
        obj.spec.strategy.rollingUpdate.maxSurge ??= '25%';
      }
      defaultTemplate(obj.spec.template);
      break;
    case 'StatefulSet':
      obj.spec ??= {};
      obj.spec.replicas ??= 1;
      obj.spec.revisionHistoryLimit ??= 10;
      obj.spec.podManagementPolicy ??= 'OrderedReady';
      obj.spec.updateStrategy ??= { type: 'RollingUpdate' };
      if (obj.spec.updateStrategy.type === 'RollingUpdate') {
        obj.spec.updateStrategy.rollingUpdate ??= { partition: 0 };
      }
      obj.spec.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
      for (const c of obj.spec.volumeClaimTemplates ?? []) {
        c.apiVersion ??= 'v1';
        c.kind ??= 'PersistentVolumeClaim';
        c.spec ??= {};
        c.spec.volumeMode ??= 'Filesystem';
        c.status ??= { phase: 'Pending' };
      }
      defaultTemplate(obj.spec.template);
      break;
    case 'DaemonSet':
      obj.spec ??= {};
      obj.spec.revisionHistoryLimit ??= 10;
      obj.spec.updateStrategy ??= { type: 'RollingUpdate' };
      if (obj.spec.updateStrategy.type === 'RollingUpdate') {
        obj.spec.updateStrategy.rollingUpdate ??= {};
        obj.spec.updateStrategy.rollingUpdate.maxUnavailable ??= 1;
        obj.spec.updateStrategy.rollingUpdate.maxSurge ??= 0;
      }
      defaultTemplate(obj.spec.template);
      break;
    case 'ReplicaSet':
      obj.spec ??= {};
      obj.spec.replicas ??= 1;
      defaultTemplate(obj.spec.template);
      break;
    case 'Job':
      obj.spec ??= {};
      defaultJobSpec(obj.spec, obj.metadata);
      break;
    case 'CronJob':
      obj.spec ??= {};
      obj.spec.concurrencyPolicy ??= 'Allow';
      obj.spec.suspend ??= false;
      obj.spec.successfulJobsHistoryLimit ??= 3;
      obj.spec.failedJobsHistoryLimit ??= 1;
      obj.spec.jobTemplate ??= {};
      obj.spec.jobTemplate.spec ??= {};
      {
        const js = obj.spec.jobTemplate.spec;
        js.backoffLimit ??= 6;
        js.completionMode ??= 'NonIndexed';
        js.suspend ??= false;
        js.podReplacementPolicy ??= 'TerminatingOrFailed';
        defaultTemplate(js.template, 'Never');
      }
      break;
    case 'Ingress':
      for (const rule of spec?.rules ?? [])
        for (const p of rule.http?.paths ?? []) p.pathType ??= 'ImplementationSpecific';
      break;
    case 'NetworkPolicy':
      obj.spec ??= {};
      obj.spec.policyTypes ??= obj.spec.egress ? ['Ingress', 'Egress'] : ['Ingress'];
      for (const rule of [...(obj.spec.ingress ?? []), ...(obj.spec.egress ?? [])]) {
        for (const p of rule.ports ?? []) p.protocol ??= 'TCP';
      }
      break;
    case 'CustomResourceDefinition':
      for (const v of obj.spec?.versions ?? []) v.served ??= true;
      obj.spec.names ??= {};
      obj.spec.names.singular ??= String(obj.spec.names.kind ?? '').toLowerCase();
      obj.spec.names.listKind ??= `${obj.spec.names.kind}List`;
      obj.spec.conversion ??= { strategy: 'None' };
      break;
  }
  return obj;
}

function defaultService(spec: Json): void {
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  if (spec.type !== 'ExternalName') {
    spec.ipFamilies ??= ['IPv4'];
    spec.ipFamilyPolicy ??= 'SingleStack';
    spec.internalTrafficPolicy ??= 'Cluster';
  }
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') spec.externalTrafficPolicy ??= 'Cluster';
  for (const p of spec.ports ?? []) {
    p.protocol ??= 'TCP';
    p.targetPort ??= p.port;
  }
}

function defaultTemplate(template: Json, restartPolicy = 'Always'): void {
  if (!template) return;
  template.spec ??= {};
  defaultPodSpec(template.spec, restartPolicy);
}

function defaultContainer(c: Json): void {
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  if (c.imagePullPolicy === undefined) {
    const image = String(c.image ?? '');
    const tag = image.includes('@') ? 'digest' : (image.split('/').pop() ?? '').split(':')[1];
    c.imagePullPolicy = tag === undefined || tag === 'latest' ? 'Always' : 'IfNotPresent';
  }
  c.resources ??= {};
  for (const p of c.ports ?? []) p.protocol ??= 'TCP';
  for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
    if (!probe) continue;
    probe.timeoutSeconds ??= 1;
    probe.periodSeconds ??= 10;
    probe.successThreshold ??= 1;
    probe.failureThreshold ??= 3;
    if (probe.httpGet) probe.httpGet.scheme ??= 'HTTP';
  }
}

function defaultPodSpec(spec: Json, restartPolicy = 'Always'): void {
  spec.restartPolicy ??= restartPolicy;
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) defaultContainer(c);
  for (const v of spec.volumes ?? []) {
    if (v.configMap) v.configMap.defaultMode ??= 420;
    if (v.secret) v.secret.defaultMode ??= 420;
  }
}

function defaultJobSpec(spec: Json, meta: Json): void {
  spec.parallelism ??= 1;
  spec.completions ??= 1;
  spec.backoffLimit ??= 6;
  spec.completionMode ??= 'NonIndexed';
  spec.suspend ??= false;
  spec.podReplacementPolicy ??= 'TerminatingOrFailed';
  spec.manualSelector ??= undefined;
  if (spec.manualSelector === undefined) delete spec.manualSelector;
  defaultTemplate(spec.template, 'Never');
  const uid = meta.uid;
  if (uid && !spec.selector) {
    spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
    spec.template.metadata ??= {};
    spec.template.metadata.labels = {
      ...(spec.template.metadata.labels ?? {}),
      'batch.kubernetes.io/controller-uid': uid,
      'batch.kubernetes.io/job-name': meta.name,
      'controller-uid': uid,
      'job-name': meta.name,
    };
  }
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The validation the real server would refuse with 422, for the mistakes manifests actually make. */
export function validate(type: ResourceType, obj: Json, old?: Json): void {
  const causes: StatusCause[] = [];
  const name: string = obj.metadata?.name ?? '';
  const add = (field: string, reason: string, message: string) => causes.push({ reason, message, field });
  const labelOnly = ['Namespace', 'Service'].includes(type.kind);
  if (!name) add('metadata.name', 'FieldValueRequired', 'Required value: name or generateName is required');
  else if (
    (labelOnly ? !DNS_LABEL.test(name) : !DNS_SUBDOMAIN.test(name)) ||
    name.length > (labelOnly ? 63 : 253)
  ) {
    add(
      'metadata.name',
      'FieldValueInvalid',
      `Invalid value: "${name}": a lowercase RFC 1123 ${labelOnly ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
    );
  }
  for (const [k, v] of Object.entries(obj.metadata?.labels ?? {})) {
    if (
      typeof v !== 'string' ||
      v.length > 63 ||
      (v !== '' && !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(v))
    ) {
      add(
        `metadata.labels`,
        'FieldValueInvalid',
        `Invalid value: ${JSON.stringify(v)}: label value of ${k} is not valid`,
      );
    }
  }
  const podSpecAt = (spec: Json, path: string) => {
    const containers = spec?.containers;
    if (!Array.isArray(containers) || containers.length === 0) {
      add(`${path}.containers`, 'FieldValueRequired', 'Required value');
      return;
    }
    containers.forEach((c: Json, i: number) => {
      if (!c.name) add(`${path}.containers[${i}].name`, 'FieldValueRequired', 'Required value');
      if (!c.image) add(`${path}.containers[${i}].image`, 'FieldValueRequired', 'Required value');
    });
  };
  const workload = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].includes(type.kind);
  if (workload) {
    const sel = obj.spec?.selector;
    const tl = obj.spec?.template?.metadata?.labels ?? {};
    if (!sel) add('spec.selector', 'FieldValueRequired', 'Required value');
    else {
      for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
        if (tl[k] !== v) {
          add(
            'spec.template.metadata.labels',
            'FieldValueInvalid',
            `Invalid value: ${JSON.stringify(tl)}: \`selector\` does not match template \`labels\``,
          );
          break;
        }
      }
    }
    podSpecAt(obj.spec?.template?.spec, 'spec.template.spec');
    if (old && JSON.stringify(old.spec?.selector) !== JSON.stringify(obj.spec?.selector)) {
      add(
        'spec.selector',
        'FieldValueInvalid',
        `Invalid value: ${JSON.stringify(obj.spec?.selector)}: field is immutable`,
      );
    }
  }
  if (type.kind === 'Pod') podSpecAt(obj.spec, 'spec');
  if (type.kind === 'Job') {
    podSpecAt(obj.spec?.template?.spec, 'spec.template.spec');
    if (old && JSON.stringify(old.spec?.template) !== JSON.stringify(obj.spec?.template)) {
      add(
        'spec.template',
        'FieldValueInvalid',
        `Invalid value: ${JSON.stringify(obj.spec?.template)}: field is immutable`,
      );
    }
  }
  if (type.kind === 'Service' && obj.spec?.type !== 'ExternalName') {
    if (!Array.isArray(obj.spec?.ports) || obj.spec.ports.length === 0) {
      if (obj.spec?.clusterIP !== 'None') add('spec.ports', 'FieldValueRequired', 'Required value');
    }
    if (old?.spec?.clusterIP && obj.spec?.clusterIP && old.spec.clusterIP !== obj.spec.clusterIP) {
      add(
        'spec.clusterIP',
        'FieldValueInvalid',
        `Invalid value: "${obj.spec.clusterIP}": field is immutable`,
      );
    }
  }
  if (type.kind === 'CustomResourceDefinition') {
    const s = obj.spec ?? {};
    if (!s.group) add('spec.group', 'FieldValueRequired', 'Required value');
    if (!s.names?.plural) add('spec.names.plural', 'FieldValueRequired', 'Required value');
    if (!s.names?.kind) add('spec.names.kind', 'FieldValueRequired', 'Required value');
    if (s.group && s.names?.plural && name !== `${s.names.plural}.${s.group}`) {
      add(
        'metadata.name',
        'FieldValueInvalid',
        `Invalid value: "${name}": must be spec.names.plural+"."+spec.group`,
      );
    }
    if (!Array.isArray(s.versions) || s.versions.length === 0)
      add('spec.versions', 'FieldValueRequired', 'Required value');
    else if (s.versions.filter((v: Json) => v.storage).length !== 1) {
      add(
        'spec.versions',
        'FieldValueInvalid',
        'Invalid value: must have exactly one version marked as storage version',
      );
    }
  }
  if (type.kind === 'Event' && !type.group) validateEvent(obj, add);
  if (causes.length > 0) throw invalid(type.kind, type.group, name, causes);
}

/** A core/v1 Event as the real server's legacy validation sees it (events created through core/v1). */
function validateEvent(obj: Json, add: (field: string, reason: string, message: string) => void): void {
  const namespace: string = obj.metadata?.namespace ?? '';
  const involved: string = obj.involvedObject?.namespace ?? '';
  const mismatch = (value: string) =>
    add(
      'involvedObject.namespace',
      'FieldValueInvalid',
      `Invalid value: "${value}": does not match event.namespace`,
    );
  if (!obj.eventTime) {
    // An event about a cluster-scoped object lives in `default` (or nowhere), as client-go puts it.
    if (involved === '' ? namespace !== '' && namespace !== 'default' : namespace !== involved)
      mismatch(involved);
    return;
  }
  // "New" events (eventTime set) are checked strictly.
  if (involved === '' && namespace !== 'default' && namespace !== 'kube-system') mismatch(involved);
  const required = (field: string, value: unknown, limit?: number) => {
    if (typeof value !== 'string' || value === '') add(field, 'FieldValueRequired', 'Required value');
    else if (limit && value.length > limit)
      add(field, 'FieldValueInvalid', `Invalid value: "": can have at most ${limit} characters`);
  };
  required('reportingComponent', obj.reportingComponent);
  required('reportingInstance', obj.reportingInstance, 128);
  required('action', obj.action, 128);
  required('reason', obj.reason, 128);
  if (typeof obj.message === 'string' && obj.message.length > 1024)
    add('message', 'FieldValueInvalid', 'Invalid value: "": can have at most 1024 characters');
}
