import { randomUUID } from 'node:crypto';
import { applyDefaults, validate } from './defaults.js';
import {
  alreadyExists,
  badRequest,
  KubeStatusError,
  notFound,
  qualifiedResource,
  staleConflict,
} from './errors.js';
import { serverSideApply, trackUpdate } from './fields.js';
import type { Json } from './json.js';
import { normalizeStored } from './normalize.js';
import { jsonMergePatch, jsonPatch, strategicMergePatch } from './patch.js';
import { apiVersionOf, BUILTIN_TYPES, type ResourceType, typesFromCrd } from './resources.js';
import { type KubeStore, objectKey } from './store.js';

/** The finalizer that holds an owner deleted in the foreground until its blocking dependents are gone. */
const FOREGROUND = 'foregroundDeletion';

export const PatchType = {
  Json: 'application/json-patch+json',
  Merge: 'application/merge-patch+json',
  Strategic: 'application/strategic-merge-patch+json',
  Apply: 'application/apply-patch+yaml',
} as const;
export type PatchType = (typeof PatchType)[keyof typeof PatchType];

/** Options every write takes, from the query string. */
export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  force?: boolean;
  subresource?: 'status' | 'scale';
}

export function typeKeyOf(type: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${type.group}/${type.plural}`;
}

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The object without fields that change on every write, for no-op detection. */
function comparable(obj: Json): string {
  const { metadata = {}, ...rest } = obj;
  const { resourceVersion: _rv, managedFields = [], ...meta } = metadata;
  const mf = (managedFields as Json[]).map(({ time: _t, ...e }) => e);
  return JSON.stringify({ ...rest, metadata: { ...meta, managedFields: mf } });
}

/** Go's omitempty: empty label, annotation, finalizer and owner lists are not kept on the object. */
function dropEmptyMeta(obj: Json): void {
  const meta = obj.metadata ?? {};
  for (const k of ['labels', 'annotations', 'finalizers', 'ownerReferences']) {
    const v = meta[k];
    if (v !== undefined && (v === null || Object.keys(v).length === 0)) delete meta[k];
  }
}

/**
 * What metadata.generation tracks: everything but metadata, and but status where status is a
 * subresource. A custom resource without a status subresource bumps its generation on a status
 * change too, as the real server's custom resource strategy does.
 */
function specOf(type: ResourceType, obj: Json): string {
  const { metadata: _m, status, ...rest } = obj;
  return JSON.stringify(type.status ? rest : { ...rest, status });
}

/** Node-style deep sort of keys is not needed: the server keeps insertion order, as Go's JSON does by struct. */
function withApiVersion(type: ResourceType, obj: Json): Json {
  return { ...obj, apiVersion: apiVersionOf(type), kind: type.kind };
}

/**
 * A mutating admission step on create, as a webhook that stamps every new object would be: labels
 * and annotations added unless the object already sets them. Objects the server itself creates at
 * start (the default namespaces) are not mutated.
 */
export interface CreateMutation {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/**
 * The Kubernetes API's object semantics over a KubeStore: create, read, list, update, patch,
 * server-side apply and delete with uid, resourceVersion, generation, defaults, validation,
 * managedFields, finalizers, namespace and owner cascades. HTTP lives elsewhere (server.ts).
 */
export class KubeApi {
  private readonly listeners = new Set<() => void>();
  private crdTypes: ResourceType[] = [];

  private mutation: CreateMutation = {};

  constructor(
    readonly store: KubeStore,
    mutation: CreateMutation = {},
  ) {
    this.refreshCrdTypes();
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      if (!store.get('/namespaces', undefined, ns)) {
        this.create(
          this.type('', 'v1', 'namespaces')!,
          undefined,
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
          {
            fieldManager: 'kube-apiserver',
          },
        );
      }
    }
    store.subscribe((ev) => {
      if (ev.typeKey === 'apiextensions.k8s.io/customresourcedefinitions') this.refreshCrdTypes();
    });
    this.mutation = mutation;
  }

  /** All served types, built-in and from Established CRDs. */
  types(): ResourceType[] {
    return [...BUILTIN_TYPES, ...this.crdTypes];
  }

  /** Called when the set of served types changes (a CRD came or went). */
  onTypesChanged(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  type(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types().find((t) => t.group === group && t.version === version && t.plural === plural);
  }

  typeForKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.types().find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
  }

  private refreshCrdTypes(): void {
    const crds = this.store.list('apiextensions.k8s.io/customresourcedefinitions');
    const next = crds
      .filter((c) =>
        (c.status?.conditions ?? []).some((x: Json) => x.type === 'Established' && x.status === 'True'),
      )
      .filter((c) => !c.metadata.deletionTimestamp)
      .flatMap((c) => typesFromCrd(c));
    const before = JSON.stringify(this.crdTypes);
    this.crdTypes = next;
    if (JSON.stringify(next) !== before) for (const l of this.listeners) l();
  }

  get(type: ResourceType, namespace: string | undefined, name: string): Json {
    const obj = this.store.get(typeKeyOf(type), namespace, name);
    if (!obj) throw notFound(type.plural, type.group, name);
    return withApiVersion(type, obj);
  }

  list(type: ResourceType, namespace: string | undefined): { items: Json[]; resourceVersion: string } {
    return {
      items: this.store.list(typeKeyOf(type), namespace).map((o) => withApiVersion(type, o)),
      resourceVersion: String(this.store.resourceVersion),
    };
  }

  private checkNamespace(type: ResourceType, namespace: string | undefined, obj: Json): void {
    if (!type.namespaced) {
      delete obj.metadata.namespace;
      return;
    }
    if (!namespace)
      throw badRequest('the server could not find the requested resource: a namespace is required');
    if (obj.metadata.namespace && obj.metadata.namespace !== namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    obj.metadata.namespace = namespace;
    const ns = this.store.get('/namespaces', undefined, namespace);
    if (!ns) throw notFound('namespaces', '', namespace);
    if (ns.metadata.deletionTimestamp) {
      throw new KubeStatusError(
        403,
        'Forbidden',
        `${type.kind.toLowerCase()} "${obj.metadata.name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
        {
          name: obj.metadata.name,
          kind: type.plural,
          causes: [
            {
              reason: 'NamespaceTerminating',
              message: `namespace ${namespace} is being terminated`,
              field: 'metadata.namespace',
            },
          ],
        },
      );
    }
  }

  private checkKind(type: ResourceType, obj: Json): void {
    if (!isObject(obj)) throw badRequest('the body of the request is not an object');
    if (obj.kind && obj.kind !== type.kind) {
      throw badRequest(
        `the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(type)})`,
      );
    }
    if (obj.apiVersion && obj.apiVersion !== apiVersionOf(type)) {
      throw badRequest(
        `the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(type)})`,
      );
    }
  }

  create(type: ResourceType, namespace: string | undefined, body: Json, options: WriteOptions = {}): Json {
    this.checkKind(type, body);
    const obj = structuredClone(body);
    obj.metadata ??= {};
    if (!obj.metadata.name && obj.metadata.generateName) {
      obj.metadata.name = `${obj.metadata.generateName}${randomUUID().replace(/-/g, '').slice(0, 5)}`;
    }
    this.checkNamespace(type, namespace, obj);
    if (obj.metadata.name && this.store.get(typeKeyOf(type), namespace, obj.metadata.name)) {
      throw alreadyExists(type.plural, type.group, obj.metadata.name);
    }
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (type.status) delete obj.status;
    const prepared = this.prepareNew(type, obj, now);
    prepared.metadata.managedFields = trackUpdate({}, prepared, {
      kind: type.kind,
      custom: type.custom,
      apiVersion: apiVersionOf(type),
      statusSeparate: type.status,
      manager: options.fieldManager ?? 'unknown',
      now,
    });
    return this.commitCreate(type, prepared, options);
  }

  /** uid, timestamps, generation, defaults and validation for a new object. */
  private prepareNew(type: ResourceType, obj: Json, now: string): Json {
    const meta = obj.metadata;
    for (const k of [
      'uid',
      'resourceVersion',
      'generation',
      'creationTimestamp',
      'deletionTimestamp',
      'selfLink',
    ]) {
      delete meta[k];
    }
    const ordered: Json = { apiVersion: apiVersionOf(type), kind: type.kind };
    const metadata: Json = { name: meta.name };
    if (meta.generateName) metadata.generateName = meta.generateName;
    if (type.namespaced) metadata.namespace = meta.namespace;
    metadata.uid = randomUUID();
    if (type.generation) metadata.generation = 1;
    metadata.creationTimestamp = now;
    Object.assign(metadata, meta);
    Object.assign(ordered, obj, { metadata });
    ordered.apiVersion = apiVersionOf(type);
    ordered.kind = type.kind;
    if (type.kind === 'Namespace') {
      ordered.spec = { ...(ordered.spec ?? {}), finalizers: ['kubernetes'] };
      ordered.status = { phase: 'Active' };
    }
    if (type.kind === 'Service') this.allocateClusterIp(ordered);
    this.mutate(ordered);
    normalizeStored(type, ordered);
    applyDefaults(type, ordered);
    dropEmptyMeta(ordered);
    validate(type, ordered);
    return ordered;
  }

  /** The mutating admission step: configured labels and annotations that the object does not set. */
  private mutate(obj: Json): void {
    for (const field of ['labels', 'annotations'] as const) {
      const add = this.mutation[field];
      if (!add || Object.keys(add).length === 0) continue;
      obj.metadata[field] = { ...add, ...(obj.metadata[field] ?? {}) };
    }
  }

  private allocateClusterIp(svc: Json): void {
    svc.spec ??= {};
    if (svc.spec.type === 'ExternalName') return;
    if (!svc.spec.clusterIP) {
      const used = new Set(this.store.list('/services').map((s) => s.spec?.clusterIP));
      let ip = '';
      for (let i = 10; ; i++) {
        ip = `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`;
        if (!used.has(ip)) break;
      }
      svc.spec.clusterIP = ip;
    }
    svc.spec.clusterIPs ??= [svc.spec.clusterIP];
    svc.status ??= { loadBalancer: {} };
  }

  private commitCreate(type: ResourceType, obj: Json, options: WriteOptions): Json {
    if (options.dryRun) return obj;
    obj.metadata.resourceVersion = String(this.store.nextRv());
    this.store.put(typeKeyOf(type), obj);
    return structuredClone(obj);
  }

  /**
   * PUT: replaces the object (or only its status, for the status subresource). A resourceVersion in
   * the body that is not the current one is a 409; none means "unconditionally".
   */
  update(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    body: Json,
    options: WriteOptions = {},
  ): Json {
    this.checkKind(type, body);
    const live = this.store.get(typeKeyOf(type), namespace, name);
    if (!live) throw notFound(type.plural, type.group, name);
    if (body.metadata?.name && body.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    const rv = body.metadata?.resourceVersion;
    if (rv && rv !== live.metadata.resourceVersion) throw staleConflict(type.plural, type.group, name);
    return this.commitUpdate(type, live, structuredClone(body), options, 'Update');
  }

  /** PATCH in Json of the four patch types; apply creates the object when it is missing. */
  patch(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    patchType: string,
    body: Json,
    options: WriteOptions = {},
  ): Json {
    const live = this.store.get(typeKeyOf(type), namespace, name);
    if (patchType === PatchType.Apply) return this.apply(type, namespace, name, live, body, options);
    if (!live) throw notFound(type.plural, type.group, name);
    const current = withApiVersion(type, structuredClone(live));
    let patched: Json;
    switch (patchType) {
      case PatchType.Json:
        patched = jsonPatch(current, body);
        break;
      case PatchType.Merge:
        patched = jsonMergePatch(current, body);
        break;
      case PatchType.Strategic:
        if (type.custom) {
          throw new KubeStatusError(
            415,
            'UnsupportedMediaType',
            'strategic merge patch is not supported for custom resources; use a JSON merge patch',
          );
        }
        patched = strategicMergePatch(current, body, type.kind);
        break;
      default:
        throw new KubeStatusError(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`,
        );
    }
    if (!isObject(patched)) throw badRequest('the patch did not produce an object');
    const rv = patched.metadata?.resourceVersion;
    if (rv && rv !== live.metadata.resourceVersion) throw staleConflict(type.plural, type.group, name);
    if (patched.metadata?.name !== name) throw badRequest('the patch changed metadata.name');
    return this.commitUpdate(type, live, patched, options, 'Update');
  }

  private apply(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    live: Json | undefined,
    config: Json,
    options: WriteOptions,
  ): Json {
    if (!options.fieldManager) {
      throw badRequest('PATCH, application/apply-patch+yaml requires fieldManager to be set');
    }
    if (!isObject(config)) throw badRequest('the applied configuration is not an object');
    if (!config.apiVersion || !config.kind) {
      throw badRequest('invalid object type: apiVersion and kind must be set in an applied configuration');
    }
    this.checkKind(type, config);
    if (config.metadata?.name && config.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${config.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    if (
      config.metadata?.resourceVersion &&
      live &&
      config.metadata.resourceVersion !== live.metadata.resourceVersion
    ) {
      throw staleConflict(type.plural, type.group, name);
    }
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const ownership = {
      kind: type.kind,
      custom: type.custom,
      apiVersion: apiVersionOf(type),
      statusSeparate: type.status,
      manager: options.fieldManager,
      now,
      force: Boolean(options.force),
      ...(options.subresource ? { subresource: options.subresource } : {}),
    };
    if (!live) {
      if (options.subresource) throw notFound(type.plural, type.group, name);
      const cfg = structuredClone(config);
      cfg.metadata = { ...(cfg.metadata ?? {}), name };
      if (type.status) delete cfg.status;
      const { object, managedFields } = serverSideApply(undefined, cfg, ownership);
      object.metadata ??= {};
      object.metadata.name = name;
      this.checkNamespace(type, namespace, object);
      const prepared = this.prepareNew(type, object, now);
      prepared.metadata.managedFields = managedFields;
      return this.commitCreate(type, prepared, options);
    }
    const base = withApiVersion(type, structuredClone(live));
    const { object, managedFields } = serverSideApply(base, structuredClone(config), ownership);
    object.metadata.managedFields = managedFields;
    return this.commitUpdate(type, live, object, options, 'Apply');
  }

  /** The shared tail of update, patch and apply: keep what the client may not change, default, validate, bump. */
  private commitUpdate(
    type: ResourceType,
    live: Json,
    next: Json,
    options: WriteOptions,
    op: 'Update' | 'Apply',
  ): Json {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    let obj: Json;
    if (options.subresource === 'status') {
      obj = structuredClone(live);
      if (next.status === undefined) delete obj.status;
      else obj.status = next.status;
      if (op === 'Apply') obj.metadata.managedFields = next.metadata.managedFields;
    } else {
      obj = next;
      obj.metadata ??= {};
      if (type.status) {
        if (live.status === undefined) delete obj.status;
        else obj.status = structuredClone(live.status);
      }
      obj.metadata.name = live.metadata.name;
      if (type.namespaced) obj.metadata.namespace = live.metadata.namespace;
      obj.metadata.uid = live.metadata.uid;
      obj.metadata.creationTimestamp = live.metadata.creationTimestamp;
      if (live.metadata.deletionTimestamp) obj.metadata.deletionTimestamp = live.metadata.deletionTimestamp;
      else delete obj.metadata.deletionTimestamp;
      if (live.metadata.generation !== undefined) obj.metadata.generation = live.metadata.generation;
      else delete obj.metadata.generation;
      if (type.kind === 'Service') {
        obj.spec ??= {};
        obj.spec.clusterIP ??= live.spec?.clusterIP;
        obj.spec.clusterIPs ??= live.spec?.clusterIPs;
      }
      if (type.kind === 'Job') {
        obj.spec ??= {};
        obj.spec.selector ??= live.spec?.selector;
        if (obj.spec.template && live.spec?.template?.metadata?.labels) {
          obj.spec.template.metadata ??= {};
          obj.spec.template.metadata.labels = {
            ...live.spec.template.metadata.labels,
            ...(obj.spec.template.metadata.labels ?? {}),
          };
        }
      }
      if (type.kind === 'Namespace' && live.spec) obj.spec = { ...live.spec, ...(obj.spec ?? {}) };
      normalizeStored(type, obj);
      applyDefaults(type, obj);
      dropEmptyMeta(obj);
      validate(type, obj, live);
    }
    obj.apiVersion = apiVersionOf(type);
    obj.kind = type.kind;
    obj.metadata.resourceVersion = live.metadata.resourceVersion;
    const given = next.metadata?.managedFields;
    const explicit =
      op === 'Update' &&
      options.subresource === undefined &&
      Array.isArray(given) &&
      JSON.stringify(given) !== JSON.stringify(live.metadata.managedFields ?? []);
    if (explicit && given.length > 0) {
      // a request that sets managedFields explicitly (kubectl's client-side to server-side apply
      // upgrade does) gets them as given, as on the real server
      obj.metadata.managedFields = given;
    } else if (op === 'Update') {
      // an explicit empty list resets ownership: the request's manager then owns what it sets
      const base = explicit
        ? { ...withApiVersion(type, live), metadata: { ...live.metadata, managedFields: [] } }
        : withApiVersion(type, live);
      obj.metadata.managedFields = trackUpdate(base, obj, {
        kind: type.kind,
        custom: type.custom,
        apiVersion: apiVersionOf(type),
        statusSeparate: type.status,
        manager: options.fieldManager ?? 'unknown',
        now,
        ...(options.subresource ? { subresource: options.subresource } : {}),
      });
    }
    if (type.generation && specOf(type, obj) !== specOf(type, withApiVersion(type, live))) {
      obj.metadata.generation = (live.metadata.generation ?? 0) + 1;
    }
    if (comparable(obj) === comparable(withApiVersion(type, live)))
      return withApiVersion(type, structuredClone(live));
    if (options.dryRun) return obj;
    if (obj.metadata.deletionTimestamp && (obj.metadata.finalizers ?? []).length === 0) {
      // the last finalizer is gone: the object goes, and the garbage collector sees to its dependents
      const gone = this.store.remove(typeKeyOf(type), obj);
      this.collectDependents(obj.metadata.uid);
      return gone;
    }
    obj.metadata.resourceVersion = String(this.store.nextRv());
    this.store.put(typeKeyOf(type), obj);
    return structuredClone(obj);
  }

  /**
   * DELETE: objects with finalizers get a deletionTimestamp and stay; namespaces turn Terminating and
   * go once their contents are gone; dependents (by ownerReferences) follow unless orphaned.
   */
  delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    options: {
      dryRun?: boolean;
      propagationPolicy?: string;
      preconditionRv?: string;
      preconditionUid?: string;
    } = {},
  ): Json {
    const live = this.store.get(typeKeyOf(type), namespace, name);
    if (!live) throw notFound(type.plural, type.group, name);
    if (options.preconditionRv && options.preconditionRv !== live.metadata.resourceVersion) {
      throw staleConflict(type.plural, type.group, name);
    }
    if (options.preconditionUid && options.preconditionUid !== live.metadata.uid) {
      throw new KubeStatusError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${qualifiedResource(type.plural, type.group)} "${name}": Precondition failed: UID in precondition: ${options.preconditionUid}, UID in object meta: ${live.metadata.uid}`,
      );
    }
    if (options.dryRun) return withApiVersion(type, structuredClone(live));
    if (options.propagationPolicy === 'Orphan') this.orphanDependents(live.metadata.uid);
    const foreground = options.propagationPolicy === 'Foreground' && type.kind !== 'Namespace';
    const finalizers: string[] =
      type.kind === 'Namespace'
        ? [...(live.spec?.finalizers ?? []), ...(live.metadata.finalizers ?? [])]
        : (live.metadata.finalizers ?? []);
    if (finalizers.length > 0 || foreground || type.kind === 'Namespace') {
      if (live.metadata.deletionTimestamp) return withApiVersion(type, structuredClone(live));
      const obj = structuredClone(live);
      obj.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      obj.metadata.deletionGracePeriodSeconds = 0;
      // foreground deletion: the owner stays, with this finalizer, until its blocking dependents are gone
      if (foreground) obj.metadata.finalizers = [...(obj.metadata.finalizers ?? []), FOREGROUND];
      if (type.generation) obj.metadata.generation = (obj.metadata.generation ?? 0) + 1;
      if (type.kind === 'Namespace') obj.status = { ...(obj.status ?? {}), phase: 'Terminating' };
      obj.metadata.resourceVersion = String(this.store.nextRv());
      this.store.put(typeKeyOf(type), obj);
      if (type.kind === 'Namespace') setTimeout(() => this.finishNamespace(name), 20);
      else if (foreground) this.finishForeground(type, namespace, name, 20);
      return withApiVersion(type, structuredClone(obj));
    }
    const gone = this.store.remove(typeKeyOf(type), live);
    if (type.kind === 'CustomResourceDefinition') this.dropCustomResources(live);
    this.collectDependents(live.metadata.uid);
    return withApiVersion(type, gone);
  }

  /** Every uid in the store: the owners that still exist. */
  private liveUids(): Set<string> {
    const uids = new Set<string>();
    for (const key of this.store.typeKeys()) for (const o of this.store.list(key)) uids.add(o.metadata.uid);
    return uids;
  }

  /** The objects with an ownerReference to `uid`, with their type key. */
  private dependentsOf(uid: string): { key: string; obj: Json }[] {
    const out: { key: string; obj: Json }[] = [];
    for (const key of this.store.typeKeys()) {
      for (const obj of this.store.list(key)) {
        if ((obj.metadata.ownerReferences ?? []).some((r: Json) => r.uid === uid)) out.push({ key, obj });
      }
    }
    return out;
  }

  private typeOfKey(key: string): ResourceType | undefined {
    return this.types().find((t) => typeKeyOf(t) === key);
  }

  /** Removes the references to `uid` from a dependent, as the garbage collector patches them. */
  private dropOwnerReference(key: string, obj: Json, uid: string): void {
    const type = this.typeOfKey(key);
    if (!type) return;
    this.writeObject(type, obj.metadata.namespace, obj.metadata.name, (o) => {
      o.metadata.ownerReferences = (o.metadata.ownerReferences ?? []).filter((r: Json) => r.uid !== uid);
    });
  }

  /** Orphan propagation: dependents lose their reference to the owner and stay. */
  private orphanDependents(uid: string): void {
    for (const { key, obj } of this.dependentsOf(uid)) this.dropOwnerReference(key, obj, uid);
  }

  /**
   * The garbage collector after an owner is gone: a dependent that still has another existing
   * owner only loses the dangling reference; one whose owners are all gone is deleted in the
   * background (and, with finalizers of its own, stays Terminating until they are removed).
   */
  private collectDependents(uid: string): void {
    const live = this.liveUids();
    for (const { key, obj } of this.dependentsOf(uid)) {
      const current = this.store.get(key, obj.metadata.namespace, obj.metadata.name);
      if (!current || current.metadata.uid !== obj.metadata.uid) continue;
      const others = (current.metadata.ownerReferences ?? []).filter(
        (r: Json) => r.uid !== uid && live.has(r.uid),
      );
      if (others.length > 0) {
        this.dropOwnerReference(key, current, uid);
        continue;
      }
      const type = this.typeOfKey(key);
      if (!type || current.metadata.deletionTimestamp) continue;
      this.delete(type, current.metadata.namespace, current.metadata.name, {
        propagationPolicy: 'Background',
      });
    }
  }

  /**
   * Foreground deletion, as the garbage collector does it: dependents owned by nobody else are
   * deleted (in the foreground too); the owner keeps its `foregroundDeletion` finalizer until
   * every dependent with `blockOwnerDeletion` is gone, then goes (or waits for its other finalizers).
   */
  private finishForeground(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    delayMs: number,
  ): void {
    const timer = setTimeout(() => {
      const owner = this.store.get(typeKeyOf(type), namespace, name);
      if (!owner || !(owner.metadata.finalizers ?? []).includes(FOREGROUND)) return;
      const uid = owner.metadata.uid;
      const live = this.liveUids();
      let blocking = 0;
      for (const { key, obj } of this.dependentsOf(uid)) {
        const refs: Json[] = obj.metadata.ownerReferences ?? [];
        if (refs.some((r) => r.uid !== uid && live.has(r.uid))) {
          this.dropOwnerReference(key, obj, uid);
          continue;
        }
        const depType = this.typeOfKey(key);
        if (depType && !obj.metadata.deletionTimestamp) {
          this.delete(depType, obj.metadata.namespace, obj.metadata.name, {
            propagationPolicy: 'Foreground',
          });
        }
        const still = this.store.get(key, obj.metadata.namespace, obj.metadata.name);
        if (still && refs.some((r) => r.uid === uid && r.blockOwnerDeletion)) blocking++;
      }
      if (blocking > 0) {
        this.finishForeground(type, namespace, name, 100);
        return;
      }
      this.writeObject(type, namespace, name, (o) => {
        o.metadata.finalizers = (o.metadata.finalizers ?? []).filter((f: string) => f !== FOREGROUND);
      });
    }, delayMs);
    timer.unref();
  }

  /** The namespace controller: deletes everything in the namespace, then the namespace itself. */
  private finishNamespace(name: string): void {
    for (const key of this.store.typeKeys()) {
      if (key === '/namespaces') continue;
      for (const obj of this.store.list(key, name)) {
        if (obj.metadata.namespace !== name) continue;
        if ((obj.metadata.finalizers ?? []).length > 0) {
          if (!obj.metadata.deletionTimestamp) {
            const marked = structuredClone(obj);
            marked.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
            marked.metadata.resourceVersion = String(this.store.nextRv());
            this.store.put(key, marked);
          }
          continue;
        }
        this.store.remove(key, obj);
      }
    }
    const remaining = this.store
      .typeKeys()
      .filter((k) => k !== '/namespaces')
      .some((k) => this.store.list(k, name).length > 0);
    if (remaining) {
      setTimeout(() => this.finishNamespace(name), 200);
      return;
    }
    const ns = this.store.get('/namespaces', undefined, name);
    if (!ns) return;
    if ((ns.metadata.finalizers ?? []).length > 0) return;
    this.store.remove('/namespaces', ns);
  }

  private dropCustomResources(crd: Json): void {
    const key = `${crd.spec.group}/${crd.spec.names.plural}`;
    for (const obj of this.store.list(key)) this.store.remove(key, obj);
  }

  /** Updates an object's status as a controller does (manager `kube-controller-manager`); no-ops are skipped. */
  writeStatus(type: ResourceType, namespace: string | undefined, name: string, status: Json): void {
    const live = this.store.get(typeKeyOf(type), namespace, name);
    if (!live) return;
    // controllers re-check often; an unchanged status is no write, so skip the write path's work
    if (JSON.stringify(live.status) === JSON.stringify(status)) return;
    const next = { ...structuredClone(live), status };
    const options: WriteOptions = { fieldManager: 'kube-controller-manager' };
    if (type.status) options.subresource = 'status';
    this.commitUpdate(type, live, next, options, 'Update');
  }

  /** Changes an object's spec as a controller does (the scheduler setting nodeName, the binder volumeName). */
  writeObject(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    mutate: (obj: Json) => void,
  ): void {
    const live = this.store.get(typeKeyOf(type), namespace, name);
    if (!live) return;
    const next = withApiVersion(type, structuredClone(live));
    mutate(next);
    if (JSON.stringify(next) === JSON.stringify(withApiVersion(type, live))) return;
    this.commitUpdate(type, live, next, { fieldManager: 'kube-controller-manager' }, 'Update');
  }

  /** The set of served types for a group-version, for discovery and routing. */
  typesIn(group: string, version: string): ResourceType[] {
    return this.types().filter((t) => t.group === group && t.version === version);
  }

  /** Every object key the store holds for a type, for tests. */
  keysOf(type: ResourceType): string[] {
    return this.store.list(typeKeyOf(type)).map((o) => objectKey(o.metadata.namespace, o.metadata.name));
  }
}
