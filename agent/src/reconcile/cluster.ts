import type { KubeObject } from '@flotilla/shared';
import {
  ApiException,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
} from '@kubernetes/client-node';

/** Where a kind is served: its plural resource name and whether it is namespaced. */
export interface ResourceInfo {
  name: string;
  namespaced: boolean;
}

/** What one watch stream follows: a served kind, in one namespace or (undefined) all of them. */
export interface WatchTarget {
  apiVersion: string;
  kind: string;
  resource: ResourceInfo;
  namespace?: string;
  /** Events after this list's resourceVersion. */
  resourceVersion: string;
  /** Ask the server to end the stream after this long (the stream then ends like any other). */
  timeoutSeconds?: number;
}

/** A running watch stream; abort() ends it (its `onEnd` is then called). */
export interface WatchStream {
  abort(): void;
}

/**
 * The few API calls the engine makes, behind one small interface so apply, prune and watch
 * read as logic and the client-node adapter stays thin. Errors keep the API status in
 * `statusOf(err)`; nothing here retries (apply.ts decides what is transient).
 */
export interface Cluster {
  get(obj: KubeObject): Promise<KubeObject | undefined>;
  apply(obj: KubeObject, options: { fieldManager: string; dryRun?: boolean }): Promise<KubeObject>;
  delete(obj: KubeObject): Promise<void>;
  list(
    apiVersion: string,
    kind: string,
    namespace?: string,
  ): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  /** Discovery; undefined when the API server does not serve the kind (yet). */
  resource(apiVersion: string, kind: string): Promise<ResourceInfo | undefined>;
  /**
   * A watch stream (Kubernetes watch semantics: ADDED, MODIFIED, DELETED, BOOKMARK, ERROR for
   * 410 Gone and friends). `onEnd` is called once when the stream ends, for whatever reason;
   * the caller relists and watches again.
   */
  watch(
    target: WatchTarget,
    onEvent: (type: string, obj: KubeObject) => void,
    onEnd: (err: unknown) => void,
  ): Promise<WatchStream>;
}

/** The HTTP status of an API error, 0 for a network failure or anything else. */
export function statusOf(err: unknown): number {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown; statusCode?: unknown } | null)?.code;
  return typeof code === 'number' ? code : 0;
}

/** One line from an API error: the Status message the server sent, not the whole body dump. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    let body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // plain text body
      }
    }
    const message = (body as { message?: unknown } | null)?.message;
    if (typeof message === 'string' && message) return `${message} (HTTP ${err.code})`;
    return `HTTP ${err.code}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** client-node's discovery found the group/version but not the kind. */
function isUnservedKind(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('Unrecognized API version and kind');
}

/** client-node fills in the default namespace and lower-cases paths on the object it is given. */
function copy(obj: KubeObject): KubernetesObject {
  return structuredClone(obj) as unknown as KubernetesObject;
}

/** KubernetesObjectApi with its cached discovery made reachable, for scope and plural names. */
class ObjectApi extends KubernetesObjectApi {
  static create(kc: KubeConfig): ObjectApi {
    const api = kc.makeApiClient(ObjectApi);
    api.setDefaultNamespace(kc);
    return api;
  }
  discover(apiVersion: string, kind: string) {
    return this.resource(apiVersion, kind);
  }
}

export function createCluster(kubeConfig: KubeConfig): Cluster {
  const api = ObjectApi.create(kubeConfig);
  const watcher = new Watch(kubeConfig);
  return {
    async get(obj) {
      try {
        const { apiVersion, kind, metadata } = obj;
        return (await api.read({
          apiVersion,
          kind,
          metadata: { name: metadata.name ?? '', namespace: metadata.namespace },
        })) as unknown as KubeObject;
      } catch (err) {
        // 404 for the object, or for its API group (a custom kind whose CRD is gone).
        if (statusOf(err) === 404 || isUnservedKind(err)) return undefined;
        throw err;
      }
    },
    async apply(obj, { fieldManager, dryRun }) {
      return (await api.patch(
        copy(obj),
        undefined,
        dryRun ? 'All' : undefined,
        fieldManager,
        true,
        PatchStrategy.ServerSideApply,
      )) as unknown as KubeObject;
    },
    async delete(obj) {
      try {
        await api.delete(copy(obj), undefined, undefined, undefined, undefined, 'Background');
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    },
    async list(apiVersion, kind, namespace) {
      const list = await api.list(apiVersion, kind, namespace);
      return {
        items: (list.items ?? []).map((item) => ({ apiVersion, kind, ...item }) as unknown as KubeObject),
        resourceVersion: list.metadata?.resourceVersion ?? '',
      };
    },
    async resource(apiVersion, kind) {
      try {
        const r = await api.discover(apiVersion, kind);
        return r ? { name: r.name, namespaced: r.namespaced } : undefined;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
    watch(target, onEvent, onEnd) {
      const { apiVersion, resource, namespace } = target;
      const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const path = `${base}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${resource.name}`;
      return watcher.watch(
        path,
        {
          resourceVersion: target.resourceVersion,
          allowWatchBookmarks: true,
          ...(target.timeoutSeconds ? { timeoutSeconds: target.timeoutSeconds } : {}),
        },
        onEvent,
        onEnd,
      );
    },
  };
}
