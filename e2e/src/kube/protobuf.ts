import { KubeStatusError } from './errors.js';
import type { Json } from './json.js';
import { PROTOBUF_MESSAGES } from './protobuf-messages.js';

/**
 * The Kubernetes protobuf wire format for request bodies, as kubectl's typed clients send them
 * (`kubectl create deployment|service|job|cronjob|secret|configmap|namespace|role|...`): the
 * `k8s\0` envelope around a runtime.Unknown, decoded field by field with the message table in
 * protobuf-messages.ts into the JSON the same object would have. Go's protobuf marshalling writes
 * every non-pointer field, zero or not, so zero scalars are dropped as Go's JSON `omitempty`
 * drops them, except for pointer fields, where an explicit zero is a value (`replicas: 0`).
 * A kind or a non-zero field not in the table gets 415 naming it, never a silent loss.
 */
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

interface Field {
  no: number;
  wire: number;
  value: bigint | Buffer;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const no = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, pos);
      pos = p2;
      out.push({ no, wire, value: v });
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      pos = p2;
      if (pos + Number(len) > buf.length) throw new Error('truncated field');
      out.push({ no, wire, value: buf.subarray(pos, pos + Number(len)) });
      pos += Number(len);
    } else if (wire === 1) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 8) });
      pos += 8;
    } else if (wire === 5) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 4) });
      pos += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const str = (f: Field) => (f.value as Buffer).toString('utf8');

/**
 * Scalar fields that are pointers in the Go types: Go marshals them only when set, so a zero
 * there is a value the user gave, not an unset field.
 */
const POINTERS = new Set([
  'DeploymentSpec.replicas',
  'DeploymentSpec.revisionHistoryLimit',
  'DeploymentSpec.progressDeadlineSeconds',
  'ReplicaSetSpec.replicas',
  'StatefulSetSpec.replicas',
  'StatefulSetSpec.revisionHistoryLimit',
  'DaemonSetSpec.revisionHistoryLimit',
  'PodSpec.terminationGracePeriodSeconds',
  'PodSpec.activeDeadlineSeconds',
  'PodSpec.automountServiceAccountToken',
  'PodSpec.priority',
  'PodSpec.shareProcessNamespace',
  'PodSpec.enableServiceLinks',
  'PodSpec.setHostnameAsFQDN',
  'PodSpec.hostUsers',
  'PodSpec.runtimeClassName',
  'PodSpec.preemptionPolicy',
  'Container.restartPolicy',
  'JobSpec.parallelism',
  'JobSpec.completions',
  'JobSpec.activeDeadlineSeconds',
  'JobSpec.backoffLimit',
  'JobSpec.backoffLimitPerIndex',
  'JobSpec.maxFailedIndexes',
  'JobSpec.manualSelector',
  'JobSpec.ttlSecondsAfterFinished',
  'JobSpec.suspend',
  'JobSpec.completionMode',
  'JobSpec.podReplacementPolicy',
  'JobSpec.managedBy',
  'CronJobSpec.startingDeadlineSeconds',
  'CronJobSpec.suspend',
  'CronJobSpec.successfulJobsHistoryLimit',
  'CronJobSpec.failedJobsHistoryLimit',
  'CronJobSpec.timeZone',
  'Secret.immutable',
  'ConfigMap.immutable',
  'ServiceAccount.automountServiceAccountToken',
  'ServiceSpec.allocateLoadBalancerNodePorts',
  'ServiceSpec.loadBalancerClass',
  'ServiceSpec.internalTrafficPolicy',
  'ServiceSpec.ipFamilyPolicy',
  'ServiceSpec.trafficDistribution',
  'ServicePort.appProtocol',
  'PersistentVolumeClaimSpec.storageClassName',
  'PersistentVolumeClaimSpec.volumeMode',
  'OwnerReference.controller',
  'OwnerReference.blockOwnerDeletion',
  'ObjectMeta.deletionGracePeriodSeconds',
]);

interface FieldSpec {
  name: string;
  type: string;
  repeated: boolean;
  map: boolean;
}

const parsed = new Map<string, Map<number, FieldSpec>>();

function messageSpec(message: string): Map<number, FieldSpec> | undefined {
  let spec = parsed.get(message);
  if (spec) return spec;
  const text = PROTOBUF_MESSAGES[message];
  if (text === undefined) return undefined;
  spec = new Map();
  for (const part of text ? text.split(', ') : []) {
    const [no, name, raw] = part.split(' ') as [string, string, string];
    const repeated = raw.startsWith('*');
    const t = repeated ? raw.slice(1) : raw;
    const map = t.startsWith('{');
    spec.set(Number(no), { name, type: map ? t.slice(1, -1) : t, repeated, map });
  }
  parsed.set(message, spec);
  return spec;
}

class UnknownField extends Error {}

/** Whether an undeclared field carries nothing (Go writes zero values of fields it has). */
function isZero(f: Field): boolean {
  if (typeof f.value === 'bigint') return f.value === 0n;
  if (f.value.length === 0) return true;
  if (f.wire !== 2) return f.value.every((b) => b === 0);
  try {
    return fields(f.value).every(isZero);
  } catch {
    return false;
  }
}

function varintOf(f: Field): bigint {
  if (typeof f.value !== 'bigint') throw new Error(`field ${f.no}: expected a varint`);
  return f.value;
}

function scalar(type: string, f: Field): Json {
  switch (type) {
    case 's':
      return str(f);
    case 'i':
      return Number(BigInt.asIntN(64, varintOf(f)));
    case 'b':
      return varintOf(f) !== 0n;
    case 'd':
      return (f.value as Buffer).readDoubleLE(0);
    case 'y':
      return (f.value as Buffer).toString('base64');
    case 'q': {
      const text = fields(f.value as Buffer).find((x) => x.no === 1);
      return text ? str(text) : '0';
    }
    case 'x': {
      let kind = 0n;
      let intVal = 0n;
      let strVal = '';
      for (const x of fields(f.value as Buffer)) {
        if (x.no === 1) kind = varintOf(x);
        else if (x.no === 2) intVal = varintOf(x);
        else if (x.no === 3) strVal = str(x);
      }
      return kind === 1n ? strVal : Number(BigInt.asIntN(32, intVal));
    }
    case 't': {
      let seconds = 0n;
      for (const x of fields(f.value as Buffer)) if (x.no === 1) seconds = varintOf(x);
      if (seconds === 0n) return undefined;
      return new Date(Number(seconds) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    }
    case 'D': {
      let ns = 0n;
      for (const x of fields(f.value as Buffer)) if (x.no === 1) ns = varintOf(x);
      return `${Number(ns) / 1e9}s`;
    }
    case 'R':
    case 'F': {
      const raw = fields(f.value as Buffer).find((x) => x.no === 1);
      return raw ? JSON.parse(str(raw)) : {};
    }
    default:
      return decodeMessage(type, f.value as Buffer);
  }
}

function isZeroJson(v: Json): boolean {
  return v === '' || v === 0 || v === false || v === undefined;
}

function decodeMessage(message: string, buf: Buffer): Json {
  const spec = messageSpec(message);
  if (!spec) throw new UnknownField(`message ${message}`);
  const out: Record<string, Json> = {};
  for (const f of fields(buf)) {
    const fd = spec.get(f.no);
    if (!fd) {
      if (isZero(f)) continue;
      throw new UnknownField(`${message} field ${f.no}`);
    }
    if (fd.type === '-') continue;
    if (fd.map) {
      let k = '';
      let v: Json;
      for (const e of fields(f.value as Buffer)) {
        if (e.no === 1) k = str(e);
        else if (e.no === 2) v = scalar(fd.type, e);
      }
      if (v === undefined) v = fd.type === 's' ? '' : fd.type === 'y' ? '' : {};
      out[fd.name] = { ...(out[fd.name] ?? {}), [k]: v };
      continue;
    }
    if (fd.repeated) {
      if (!Array.isArray(out[fd.name])) out[fd.name] = [];
      const list = out[fd.name] as Json[];
      if (f.wire === 2 && (fd.type === 'i' || fd.type === 'b')) {
        // a packed repeated scalar
        const packed = f.value as Buffer;
        let pos = 0;
        while (pos < packed.length) {
          const [v, next] = readVarint(packed, pos);
          pos = next;
          list.push(fd.type === 'b' ? v !== 0n : Number(BigInt.asIntN(64, v)));
        }
      } else list.push(scalar(fd.type, f));
      continue;
    }
    const value = scalar(fd.type, f);
    if (value === undefined) continue;
    if (isZeroJson(value) && !POINTERS.has(`${message}.${fd.name}`)) continue;
    out[fd.name] = value;
  }
  return out;
}

/** The kinds whose protobuf bodies this server decodes. */
export function protobufKinds(): string[] {
  return ['Namespace', 'ConfigMap', 'Secret', 'ServiceAccount', 'Service', 'PersistentVolumeClaim', 'Pod']
    .concat(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Ingress'])
    .concat(['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);
}

/** Decodes a protobuf request body (the `k8s\0` envelope) into the object's JSON form. */
export function decodeProtobufObject(body: Buffer): Json {
  const unsupported = (why: string) =>
    new KubeStatusError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format (application/vnd.kubernetes.protobuf: ${why}) - this test API server decodes protobuf for ${protobufKinds().join(', ')}; send application/json`,
    );
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw unsupported('missing k8s envelope');
  let apiVersion = '';
  let kind = '';
  let raw: Buffer = Buffer.alloc(0);
  try {
    for (const f of fields(body.subarray(4))) {
      if (f.no === 1) {
        for (const t of fields(f.value as Buffer)) {
          if (t.no === 1) apiVersion = str(t);
          if (t.no === 2) kind = str(t);
        }
      } else if (f.no === 2) raw = f.value as Buffer;
    }
  } catch (err) {
    throw unsupported((err as Error).message);
  }
  if (!protobufKinds().includes(kind)) throw unsupported(`${apiVersion} ${kind}`);
  let obj: Json;
  try {
    obj = decodeMessage(kind, raw);
  } catch (err) {
    throw unsupported(`${apiVersion} ${kind}: ${(err as Error).message}`);
  }
  obj.metadata ??= {};
  return { apiVersion, kind, ...obj };
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

function lenField(no: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((no << 3) | 2), varint(payload.length), payload]);
}

/**
 * An OpenAPI v2 document in gnostic's protobuf encoding with only `swagger` and `info` set. kubectl
 * fetches /openapi/v2 (protobuf only) for kinds the v3 documents do not describe; an empty document
 * makes it skip client-side validation of such kinds, as a real server's would for unknown kinds,
 * so that kubectl goes on to report "no matches for kind" itself.
 */
export function emptyOpenApiV2(version: string): Buffer {
  const info = Buffer.concat([lenField(1, Buffer.from('Kubernetes')), lenField(2, Buffer.from(version))]);
  return Buffer.concat([lenField(1, Buffer.from('2.0')), lenField(2, info)]);
}
