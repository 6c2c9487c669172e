import type { Cluster, ResourceInfo, WatchStream, WatchTarget } from '@flotilla/agent/reconcile';
import type { KubeObject } from '@flotilla/shared';
import type { Json } from '../kube/json.js';
import { apiVersionOf, BUILTIN_TYPES, type ResourceType, typesFromCrd } from '../kube/resources.js';

/**
 * An API error as client-node raises it: the agent's `statusOf` reads the HTTP status from
 * `code`, so 404 (missing namespace, unserved kind) takes the same paths as against a server.
 */
export class MemoryApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'MemoryApiError';
  }
}

export interface MemoryClusterOptions {
  /** How long a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet) takes to turn healthy; default 0 (at once). */
  readyDelayMs?: number;
  /** Watch events kept for a watch that starts from an older list; older ones get 410 Gone. */
  eventLog?: number;
}

/** The simulated cluster: the agent's Cluster interface, plus what a test does behind the agent's back. */
export interface MemoryCluster extends Cluster {
  /**
   * Changes a stored object as another client would (kubectl edit): bumps its resourceVersion
   * and tells the watches. Returns false when there is no such object.
   */
  edit(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    change: (obj: KubeObject) => void,
  ): boolean;
  /** How many objects are stored. */
  size(): number;
  /** Ends every watch and pending readiness timer. */
  close(): void;
}

interface WatchEntry {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  typeKey: string;
  namespace: string;
  obj: KubeObject;
}

interface Watcher {
  typeKey: string;
  namespace: string | undefined;
  onEvent: (type: string, obj: KubeObject) => void;
  onEnd: (err: unknown) => void;
}

const WORKLOADS = new Set(['apps/Deployment', 'apps/StatefulSet', 'apps/DaemonSet', 'apps/ReplicaSet']);
/** Metadata the server owns: never taken from an applied manifest. */
const SERVER_METADATA = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields'];

/** What a controller would write once a workload's pods are all up: enough for health.ts to call it Healthy. */
function readyStatus(obj: KubeObject, kind: string): Record<string, unknown> {
  const spec = (obj.spec ?? {}) as { replicas?: number };
  const replicas = spec.replicas ?? 1;
  const observedGeneration = obj.metadata.generation;
  switch (kind) {
    case 'DaemonSet':
      return {
        observedGeneration,
        desiredNumberScheduled: 1,
        currentNumberScheduled: 1,
        updatedNumberScheduled: 1,
        numberReady: 1,
        numberAvailable: 1,
      };
    case 'StatefulSet':
      return {
        observedGeneration,
        replicas,
        readyReplicas: replicas,
        currentReplicas: replicas,
        updatedReplicas: replicas,
        currentRevision: `${obj.metadata.name}-${observedGeneration}`,
        updateRevision: `${obj.metadata.name}-${observedGeneration}`,
      };
    default:
      return {
        observedGeneration,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
        conditions: [
          { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
          { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
        ],
      };
  }
}

/** Everything but what the server owns, to tell a real change from a no-op apply. */
function content(obj: KubeObject): string {
  const metadata: Record<string, unknown> = { ...obj.metadata };
  for (const k of SERVER_METADATA) delete metadata[k];
  return JSON.stringify({ ...obj, metadata, status: undefined });
}

/**
 * An in-memory Kubernetes API for one simulated cluster, so the fleet benchmark can run the
 * real agent a thousand times in one process. Apply replaces what the manifest sets (one field
 * manager, as the agent is the only writer), keeps status, and bumps resourceVersion and
 * generation only on a real change; namespaces must exist, as on a server; CRDs are
 * Established at once and serve their kinds; workloads turn healthy after `readyDelayMs`.
 * Watches replay from the list's resourceVersion. Not served: field ownership and conflicts,
 * merge of lists by key, admission, defaulting, validation, garbage collection, Pods.
 */
export function createMemoryCluster(options: MemoryClusterOptions = {}): MemoryCluster {
  const readyDelayMs = options.readyDelayMs ?? 0;
  const logSize = options.eventLog ?? 256;
  const objects = new Map<string, KubeObject>();
  const log: WatchEntry[] = [];
  const watchers = new Set<Watcher>();
  const timers = new Set<NodeJS.Timeout>();
  let rv = 1;
  let uid = 0;

  const builtin = new Map(BUILTIN_TYPES.map((t) => [`${apiVersionOf(t)}|${t.kind}`, t]));
  function typeOf(apiVersion: string, kind: string): ResourceType | undefined {
    const known = builtin.get(`${apiVersion}|${kind}`);
    if (known) return known;
    for (const o of objects.values()) {
      if (o.kind !== 'CustomResourceDefinition') continue;
      const t = typesFromCrd(o as unknown as Record<string, Json>).find(
        (c) => c.kind === kind && apiVersionOf(c) === apiVersion,
      );
      if (t) return t;
    }
    return undefined;
  }

  function locate(obj: KubeObject): { type: ResourceType; typeKey: string; namespace: string; key: string } {
    const type = typeOf(obj.apiVersion, obj.kind);
    if (!type) {
      throw new MemoryApiError(404, `no matches for kind "${obj.kind}" in version "${obj.apiVersion}"`);
    }
    const namespace = type.namespaced ? obj.metadata.namespace || 'default' : '';
    const typeKey = `${type.group}/${type.kind}`;
    return { type, typeKey, namespace, key: `${typeKey}/${namespace}/${obj.metadata.name ?? ''}` };
  }

  function emit(type: WatchEntry['type'], typeKey: string, namespace: string, obj: KubeObject): void {
    const entry: WatchEntry = { rv, type, typeKey, namespace, obj: structuredClone(obj) };
    log.push(entry);
    if (log.length > logSize) log.shift();
    for (const w of watchers) deliver(w, entry);
  }

  function deliver(w: Watcher, e: WatchEntry): void {
    if (e.typeKey !== w.typeKey || (w.namespace !== undefined && e.namespace !== w.namespace)) return;
    w.onEvent(e.type, structuredClone(e.obj));
  }

  function store(key: string, typeKey: string, namespace: string, next: KubeObject, created: boolean): void {
    rv++;
    next.metadata.resourceVersion = String(rv);
    objects.set(key, next);
    emit(created ? 'ADDED' : 'MODIFIED', typeKey, namespace, next);
  }

  /** The controller's part: the status a workload, namespace or CRD gets from its controller. */
  function control(
    type: ResourceType,
    key: string,
    typeKey: string,
    namespace: string,
    obj: KubeObject,
  ): void {
    if (type.kind === 'Namespace') obj.status = { phase: 'Active' };
    else if (type.kind === 'CustomResourceDefinition') {
      obj.status = {
        conditions: [
          { type: 'NamesAccepted', status: 'True' },
          { type: 'Established', status: 'True' },
        ],
      };
    } else if (WORKLOADS.has(typeKey)) {
      if (readyDelayMs <= 0) obj.status = readyStatus(obj, type.kind);
      else {
        const generation = obj.metadata.generation;
        const timer = setTimeout(() => {
          timers.delete(timer);
          const live = objects.get(key);
          if (!live || live.metadata.generation !== generation) return;
          const next = structuredClone(live);
          next.status = readyStatus(next, type.kind);
          store(key, typeKey, namespace, next, false);
        }, readyDelayMs);
        timers.add(timer);
      }
    }
  }

  const cluster: MemoryCluster = {
    async get(obj) {
      const { key } = locate(obj);
      const live = objects.get(key);
      return live ? structuredClone(live) : undefined;
    },
    async apply(obj, { dryRun }) {
      const { type, typeKey, namespace, key } = locate(obj);
      if (!obj.metadata.name) throw new MemoryApiError(422, `${obj.kind}: metadata.name: Required value`);
      if (namespace && !objects.has(`/Namespace//${namespace}`)) {
        throw new MemoryApiError(404, `namespaces "${namespace}" not found`);
      }
      const before = objects.get(key);
      const next = structuredClone(obj);
      next.metadata = {
        ...next.metadata,
        ...(namespace ? { namespace } : {}),
        uid: before?.metadata.uid ?? `sim-${++uid}`,
        creationTimestamp: before?.metadata.creationTimestamp ?? new Date().toISOString(),
        generation: before?.metadata.generation ?? 1,
        resourceVersion: before?.metadata.resourceVersion,
      };
      if (before?.status !== undefined) next.status = structuredClone(before.status);
      else delete next.status;
      if (before && content(before) === content(next)) return structuredClone(before);
      if (before && type.generation) next.metadata.generation = (before.metadata.generation as number) + 1;
      // A dry run, as on a server, runs no controller.
      if (dryRun) return next;
      control(type, key, typeKey, namespace, next);
      store(key, typeKey, namespace, next, !before);
      return structuredClone(next);
    },
    async delete(obj) {
      const { typeKey, namespace, key } = locate(obj);
      const live = objects.get(key);
      if (!live) return;
      objects.delete(key);
      rv++;
      emit('DELETED', typeKey, namespace, {
        ...live,
        metadata: { ...live.metadata, resourceVersion: String(rv) },
      });
    },
    async list(apiVersion, kind, namespace) {
      const type = typeOf(apiVersion, kind);
      if (!type)
        throw new MemoryApiError(
          404,
          `the server could not find the requested resource (${apiVersion} ${kind})`,
        );
      const prefix = `${type.group}/${type.kind}/${type.namespaced && namespace ? `${namespace}/` : ''}`;
      const items = [...objects.entries()]
        .filter(([k]) => k.startsWith(prefix))
        .map(([, o]) => structuredClone(o));
      return { items, resourceVersion: String(rv) };
    },
    async resource(apiVersion, kind): Promise<ResourceInfo | undefined> {
      const type = typeOf(apiVersion, kind);
      return type ? { name: type.plural, namespaced: type.namespaced } : undefined;
    },
    async watch(target: WatchTarget, onEvent, onEnd): Promise<WatchStream> {
      const type = typeOf(target.apiVersion, target.kind);
      const from = Number(target.resourceVersion);
      let ended = false;
      const w: Watcher = {
        typeKey: type ? `${type.group}/${type.kind}` : '',
        namespace: target.namespace,
        onEvent,
        onEnd: (err) => {
          if (ended) return;
          ended = true;
          watchers.delete(w);
          onEnd(err);
        },
      };
      const stream: WatchStream = { abort: () => w.onEnd(undefined) };
      if (!type) {
        queueMicrotask(() =>
          w.onEnd(new MemoryApiError(404, `${target.apiVersion} ${target.kind}: not served`)),
        );
        return stream;
      }
      // Events between the list and now: replay them, or say the list is too old (410 Gone).
      if (Number.isFinite(from) && log.length > 0 && log[0]!.rv > from + 1 && from < rv) {
        queueMicrotask(() => {
          onEvent('ERROR', { apiVersion: 'v1', kind: 'Status', metadata: {}, code: 410 } as KubeObject);
          w.onEnd(undefined);
        });
        return stream;
      }
      watchers.add(w);
      for (const e of log) if (e.rv > from) deliver(w, e);
      return stream;
    },
    edit(apiVersion, kind, namespace, name, change) {
      const { typeKey, namespace: ns, key } = locate({ apiVersion, kind, metadata: { name, namespace } });
      const live = objects.get(key);
      if (!live) return false;
      const next = structuredClone(live);
      change(next);
      store(key, typeKey, ns, next, false);
      return true;
    },
    size: () => objects.size,
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const w of [...watchers]) w.onEnd(undefined);
    },
  };
  return cluster;
}
