import { KubeStatusError } from './errors.js';
import type { Json } from './json.js';

/**
 * Just enough of the Kubernetes protobuf wire format for what kubectl's typed clients send
 * (`kubectl create namespace|configmap|secret|serviceaccount`): the `k8s\0` envelope and the
 * messages of those four kinds. Any other protobuf body gets 415.
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

function mapEntry(f: Field, bytes = false): [string, string] {
  let k = '';
  let v = '';
  for (const e of fields(f.value as Buffer)) {
    if (e.no === 1) k = str(e);
    if (e.no === 2) v = bytes ? (e.value as Buffer).toString('base64') : str(e);
  }
  return [k, v];
}

function objectMeta(buf: Buffer): Json {
  const meta: Json = {};
  for (const f of fields(buf)) {
    // proto2 sends empty optional strings; the JSON form omits them
    if (f.no <= 3 && str(f) === '') continue;
    if (f.no === 1) meta.name = str(f);
    else if (f.no === 2) meta.generateName = str(f);
    else if (f.no === 3) meta.namespace = str(f);
    else if (f.no === 11) {
      const [k, v] = mapEntry(f);
      meta.labels = { ...(meta.labels ?? {}), [k]: v };
    } else if (f.no === 12) {
      const [k, v] = mapEntry(f);
      meta.annotations = { ...(meta.annotations ?? {}), [k]: v };
    } else if (f.no === 14) meta.finalizers = [...(meta.finalizers ?? []), str(f)];
  }
  return meta;
}

function decodeKind(kind: string, raw: Buffer): Json {
  const obj: Json = { metadata: {} };
  for (const f of fields(raw)) {
    if (f.no === 1) {
      obj.metadata = objectMeta(f.value as Buffer);
      continue;
    }
    switch (kind) {
      case 'Namespace':
        if (f.no === 2) {
          obj.spec = {
            finalizers: fields(f.value as Buffer)
              .filter((x) => x.no === 1)
              .map(str),
          };
        }
        break;
      case 'ConfigMap':
        if (f.no === 2) obj.data = Object.fromEntries([...Object.entries(obj.data ?? {}), mapEntry(f)]);
        else if (f.no === 3)
          obj.binaryData = Object.fromEntries([...Object.entries(obj.binaryData ?? {}), mapEntry(f, true)]);
        else if (f.no === 4) obj.immutable = f.value === 1n;
        break;
      case 'Secret':
        if (f.no === 2) obj.data = Object.fromEntries([...Object.entries(obj.data ?? {}), mapEntry(f, true)]);
        else if (f.no === 3 && str(f) !== '') obj.type = str(f);
        else if (f.no === 4)
          obj.stringData = Object.fromEntries([...Object.entries(obj.stringData ?? {}), mapEntry(f)]);
        else if (f.no === 5) obj.immutable = f.value === 1n;
        break;
      case 'ServiceAccount':
        if (f.no === 4) obj.automountServiceAccountToken = f.value === 1n;
        break;
    }
  }
  return obj;
}

/** Decodes a protobuf request body of one of the supported kinds into its JSON form. */
export function decodeProtobufObject(body: Buffer): Json {
  const unsupported = (why: string) =>
    new KubeStatusError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format (application/vnd.kubernetes.protobuf: ${why}) - this test API server decodes protobuf only for Namespace, ConfigMap, Secret and ServiceAccount; send application/json`,
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
  if (apiVersion !== 'v1' || !['Namespace', 'ConfigMap', 'Secret', 'ServiceAccount'].includes(kind)) {
    throw unsupported(`${apiVersion} ${kind}`);
  }
  return { apiVersion, kind, ...decodeKind(kind, raw) };
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
