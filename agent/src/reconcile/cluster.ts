import type { KubeObject } from '@flotilla/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import { createKubeClient, KubeApiError } from '../kube-client.js';

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
 * read as logic and the adapter over the API stays thin. Errors keep the API status in
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
  if (err instanceof KubeApiError) return err.code;
  const code = (err as { code?: unknown; statusCode?: unknown } | null)?.code;
  return typeof code === 'number' ? code : 0;
}

/** One line from an API error: the Status message the server sent, not the whole body dump. */
export function apiMessage(err: unknown): string {
  if (err instanceof KubeApiError) {
    const message = (err.body as { message?: unknown } | null)?.message;
    if (typeof message === 'string' && message) return `${message} (HTTP ${err.code})`;
    const body = err.body;
    return `HTTP ${err.code}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** A kind's group/version is served but not the kind itself. */
class UnservedKindError extends Error {
  constructor(apiVersion: string, kind: string) {
    super(`Unrecognized API version and kind: ${apiVersion} ${kind}`);
    this.name = 'UnservedKindError';
  }
}

interface ApiResourceList {
  resources?: { name: string; kind: string; namespaced: boolean }[];
}

/** `/api/v1` or `/apis/GROUP/VERSION`. */
function versionPath(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/**
 * The engine's Cluster over the API server's own JSON: discovery (cached per group/version,
 * asked again when a kind is missing, as a CRD may just have been created), server-side apply,
 * get, list, delete and watch. Objects pass through untouched: a custom resource or a field newer
 * than the client keeps every field.
 */
export function createCluster(kubeConfig: KubeConfig): Cluster {
  const kube = createKubeClient(kubeConfig);
  const discovery = new Map<string, ApiResourceList>();

  async function discover(apiVersion: string, kind: string) {
    const find = (list: ApiResourceList | undefined) => list?.resources?.find((r) => r.kind === kind);
    const cached = find(discovery.get(apiVersion));
    if (cached) return cached;
    const list = await kube.request<ApiResourceList>('GET', versionPath(apiVersion));
    discovery.set(apiVersion, list);
    return find(list);
  }

  /** The object's path; a namespaced object without a namespace goes to the context's namespace. */
  async function objectPath(obj: KubeObject, withName: boolean): Promise<string> {
    const { apiVersion, kind, metadata } = obj;
    const resource = await discover(apiVersion, kind);
    if (!resource) throw new UnservedKindError(apiVersion, kind);
    const namespace = resource.namespaced ? metadata.namespace || kube.defaultNamespace : undefined;
    const parts = [versionPath(apiVersion)];
    if (namespace) parts.push('namespaces', encodeURIComponent(namespace));
    parts.push(resource.name);
    if (withName) {
      if (!metadata.name) throw new Error(`${apiVersion} ${kind}: metadata.name is not set`);
      parts.push(encodeURIComponent(metadata.name));
    }
    return parts.join('/');
  }

  return {
    async get(obj) {
      try {
        return await kube.request<KubeObject>('GET', await objectPath(obj, true));
      } catch (err) {
        // 404 for the object, or for its API group (a custom kind whose CRD is gone).
        if (statusOf(err) === 404 || err instanceof UnservedKindError) return undefined;
        throw err;
      }
    },
    async apply(obj, { fieldManager, dryRun }) {
      return kube.request<KubeObject>('PATCH', await objectPath(obj, true), {
        query: { fieldManager, force: true, ...(dryRun ? { dryRun: 'All' } : {}) },
        body: obj,
        contentType: 'application/apply-patch+yaml',
      });
    },
    async delete(obj) {
      try {
        await kube.request('DELETE', await objectPath(obj, true), {
          query: { propagationPolicy: 'Background' },
        });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    },
    async list(apiVersion, kind, namespace) {
      const resource = await discover(apiVersion, kind);
      if (!resource) throw new UnservedKindError(apiVersion, kind);
      const path = `${versionPath(apiVersion)}${resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${resource.name}`;
      const list = await kube.request<{ items?: object[]; metadata?: { resourceVersion?: string } }>(
        'GET',
        path,
      );
      return {
        // List items come without their apiVersion and kind.
        items: (list.items ?? []).map((item) => ({ apiVersion, kind, ...item }) as KubeObject),
        resourceVersion: list.metadata?.resourceVersion ?? '',
      };
    },
    async resource(apiVersion, kind) {
      try {
        const r = await discover(apiVersion, kind);
        return r ? { name: r.name, namespaced: r.namespaced } : undefined;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
    watch(target, onEvent, onEnd) {
      const { apiVersion, resource, namespace } = target;
      const path = `${versionPath(apiVersion)}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${resource.name}`;
      return kube.watch(
        path,
        {
          resourceVersion: target.resourceVersion,
          allowWatchBookmarks: true,
          ...(target.timeoutSeconds ? { timeoutSeconds: target.timeoutSeconds } : {}),
        },
        (type, obj) => onEvent(type, obj as KubeObject),
        onEnd,
      );
    },
  };
}
