import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type Logger } from '@flotilla/shared';
import { parse as parseYaml } from 'yaml';
import { KubeApi, typeKeyOf, type WriteOptions } from './api.js';
import { startControllers } from './controllers.js';
import {
  aggregatedDiscovery,
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersions,
  negotiateAggregated,
  openApiV3Document,
  openApiV3Index,
  SERVER_VERSION,
} from './discovery.js';
import { badRequest, KubeStatusError, methodNotAllowed, pageNotFound } from './errors.js';
import type { Json } from './json.js';
import { decodeProtobufObject, emptyOpenApiV2 } from './protobuf.js';
import { apiVersionOf, type ResourceType } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { KubeStore, type StoreEvent } from './store.js';
import { toTable, wantsTable } from './tables.js';

/** Options of the test API server; see DEFAULT_KUBE_SERVER_OPTIONS for the defaults. */
export interface KubeServerOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** Keep objects in this JSON file across restarts. */
  statePath?: string;
  /** How long workloads take to become ready after a spec change. */
  readyDelayMs?: number;
  /** Cluster, context and user name in the kubeconfig. */
  name?: string;
  /** How many events watch can resume from before answering 410 Gone. */
  historySize?: number;
  /** How often a watch that allows bookmarks gets one. */
  bookmarkIntervalMs?: number;
  /** Where to log; a pino logger at `warn` by default. */
  logger?: Logger;
  /**
   * Labels every created object gets unless it sets them, as from a mutating admission webhook;
   * so that what a client applies and what the server stores differ, as on clusters with policy
   * engines. None by default.
   */
  defaultLabels?: Record<string, string>;
  /** Annotations every created object gets unless it sets them (see defaultLabels). */
  defaultAnnotations?: Record<string, string>;
}

export const DEFAULT_KUBE_SERVER_OPTIONS = {
  port: 0,
  readyDelayMs: 500,
  name: 'flotilla-test',
  historySize: 5000,
  bookmarkIntervalMs: 5000,
} as const;

type ResolvedOptions = Required<
  Omit<KubeServerOptions, 'statePath' | 'defaultLabels' | 'defaultAnnotations'>
> & {
  statePath?: string;
  defaultLabels: Record<string, string>;
  defaultAnnotations: Record<string, string>;
};

function parseOptions(options: KubeServerOptions): ResolvedOptions {
  const given = Object.fromEntries(
    Object.entries(options).filter(([, v]) => v !== undefined),
  ) as KubeServerOptions;
  const o = { ...DEFAULT_KUBE_SERVER_OPTIONS, ...given };
  for (const k of ['port', 'readyDelayMs', 'historySize', 'bookmarkIntervalMs'] as const) {
    const v = o[k];
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`kube server options: ${k} must be a non-negative integer, got ${v}`);
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(o.name)) {
    throw new Error(`kube server options: name must be a DNS label, got ${JSON.stringify(o.name)}`);
  }
  const labels = o.defaultLabels ?? {};
  for (const [k, v] of Object.entries(labels)) {
    if (
      !/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(k) ||
      !/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(v)
    ) {
      throw new Error(
        `kube server options: defaultLabels: ${JSON.stringify(k)}=${JSON.stringify(v)} is not a valid label`,
      );
    }
  }
  return {
    ...o,
    defaultLabels: labels,
    defaultAnnotations: o.defaultAnnotations ?? {},
    logger: options.logger ?? createLogger({ name: 'flotilla-kube', level: 'warn' }),
  };
}

/** A running test API server. */
export interface KubeServer {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  port: number;
  /** A kubeconfig (YAML) whose current context points at this server. */
  kubeconfig: string;
  writeKubeconfig(file: string): void;
  /** The object layer, for tests that need to reach behind the HTTP API (e.g. compact history). */
  api: KubeApi;
  /** Ends every open watch, as an API server does on its watch timeout; clients re-watch from their last version. */
  closeWatches(): void;
  /**
   * How many watches are open, of one resource (plural, e.g. `configmaps`) or of all: the signal
   * that a client's watch is established, for tests that must not act before it is.
   */
  openWatches(plural?: string): number;
  /** Stops serving, ends open watches and saves state when a state file is set. */
  stop(): Promise<void>;
}

/**
 * The kubeconfig of a server: plain http on 127.0.0.1, a token user, the default namespace.
 * `insecure-skip-tls-verify` is there because client-node 1.x refuses http servers without it;
 * kubectl ignores it for http.
 */
export function kubeconfigFor(name: string, url: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: ${name}
  cluster:
    server: ${url}
    insecure-skip-tls-verify: true
contexts:
- name: ${name}
  context:
    cluster: ${name}
    namespace: default
    user: ${name}-admin
current-context: ${name}
users:
- name: ${name}-admin
  user:
    token: ${tokenFor(name)}
preferences: {}
`;
}

/** The bearer token a server accepts; requests with another token get 401, as with a wrong credential. */
export function tokenFor(name: string): string {
  return `flotilla-${name}-token`;
}

function sendJson(res: ServerResponse, code: number, body: unknown, contentType = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache, private',
  });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  const e =
    err instanceof KubeStatusError
      ? err
      : new KubeStatusError(
          500,
          'InternalError',
          `Internal error occurred: ${err instanceof Error ? err.message : String(err)}`,
        );
  if (!res.headersSent) sendJson(res, e.code, e.toStatus());
  else res.end();
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseBody(body: Buffer, contentType: string): Json {
  if (contentType === 'application/vnd.kubernetes.protobuf') return decodeProtobufObject(body);
  if (contentType.includes('protobuf') || contentType.includes('cbor')) {
    throw new KubeStatusError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format (${contentType}) - this test API server accepts application/json and application/yaml only`,
    );
  }
  const text = body.toString('utf8');
  if (!text.trim()) return undefined;
  try {
    if (contentType.includes('yaml')) return parseYaml(text);
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(
      `the request body is not valid ${contentType.includes('yaml') ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
    );
  }
}

/** The field manager the real server derives from the User-Agent when none is given. */
function managerFromUserAgent(req: IncomingMessage): string {
  const ua = req.headers['user-agent'] ?? 'unknown';
  return ua.split('/')[0]!.slice(0, 128) || 'unknown';
}

/** Items of built-in lists omit apiVersion and kind on the wire, as the real server's typed lists do. */
function listItem(type: ResourceType, obj: Json): Json {
  if (type.custom) return obj;
  const { apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

interface Route {
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

/**
 * Starts the Kubernetes API test server in this process: discovery, OpenAPI v3, CRUD, patch, apply,
 * list/watch and the simulated controllers. Each call is an independent cluster.
 */
export async function startKubeServer(options: KubeServerOptions = {}): Promise<KubeServer> {
  const o = parseOptions(options);
  const log = o.logger;
  const store = new KubeStore({
    historySize: o.historySize,
    ...(o.statePath ? { statePath: o.statePath } : {}),
  });
  const api = new KubeApi(store, { labels: o.defaultLabels, annotations: o.defaultAnnotations });
  const controllers = startControllers(api, { readyDelayMs: o.readyDelayMs });
  const watches = new Map<ServerResponse, string>();
  let hostPort = '127.0.0.1:0';
  const token = tokenFor(o.name);

  const route = (segs: string[]): Route | undefined => {
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 3) {
      group = '';
      version = segs[1]!;
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 4) {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else return undefined;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      const t = api.type(group, version, rest[2]!);
      if (t?.namespaced) {
        namespace = rest[1];
        rest = rest.slice(2);
      }
    }
    const type = api.type(group, version, rest[0]!);
    if (!type || rest.length > 3) return undefined;
    if (namespace && !type.namespaced) return undefined;
    if (!namespace && type.namespaced && rest.length > 1) return undefined;
    return { type, namespace, name: rest[1], subresource: rest[2] };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segs = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const q = url.searchParams;
    const accept = req.headers.accept;
    const auth = req.headers.authorization;
    if (auth && auth !== `Bearer ${token}`) {
      sendJson(res, 401, new KubeStatusError(401, 'Unauthorized', 'Unauthorized').toStatus());
      return;
    }
    const path = url.pathname.replace(/\/$/, '') || '/';
    if (req.method === 'GET') {
      if (path === '/version') return sendJson(res, 200, SERVER_VERSION);
      if (['/healthz', '/livez', '/readyz'].includes(path)) {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok');
        return;
      }
      if (path === '/api' || path === '/apis') {
        const v = negotiateAggregated(accept);
        if (v) {
          return sendJson(
            res,
            200,
            aggregatedDiscovery(api.types(), path === '/api', `apidiscovery.k8s.io/${v}`),
            `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`,
          );
        }
        return sendJson(res, 200, path === '/api' ? apiVersions(hostPort) : apiGroupList(api.types()));
      }
      if (segs[0] === 'apis' && segs.length === 2) {
        const g = apiGroup(api.types(), segs[1]!);
        return g ? sendJson(res, 200, g) : sendError(res, pageNotFound());
      }
      if ((segs[0] === 'api' && segs.length === 2) || (segs[0] === 'apis' && segs.length === 3)) {
        const [group, version] = segs[0] === 'api' ? ['', segs[1]!] : [segs[1]!, segs[2]!];
        const list = apiResourceList(api.types(), group, version);
        return list ? sendJson(res, 200, list) : sendError(res, pageNotFound());
      }
      if (path === '/openapi/v2') {
        if (accept?.includes('protobuf')) {
          const doc = emptyOpenApiV2(SERVER_VERSION.gitVersion);
          res.writeHead(200, {
            'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
            'Content-Length': doc.length,
          });
          res.end(doc);
          return;
        }
        return sendJson(res, 200, {
          swagger: '2.0',
          info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion },
          paths: {},
        });
      }
      if (path === '/openapi/v3') return sendJson(res, 200, openApiV3Index(api.types()));
      if (segs[0] === 'openapi' && segs[1] === 'v3') {
        const gv = segs.slice(2);
        const [group, version] = gv[0] === 'api' ? ['', gv[1]] : [gv[1], gv[2]];
        const doc = version ? openApiV3Document(api.types(), group ?? '', version) : undefined;
        return doc ? sendJson(res, 200, doc) : sendError(res, pageNotFound());
      }
    }
    const r = route(segs);
    if (!r) return sendError(res, pageNotFound());
    const body = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method ?? '')
      ? await readBody(req)
      : Buffer.alloc(0);
    const contentType = String(req.headers['content-type'] ?? 'application/json')
      .split(';')[0]!
      .trim();
    const write: WriteOptions = {
      dryRun: q.getAll('dryRun').includes('All'),
      fieldManager: q.get('fieldManager') ?? undefined,
      force: q.get('force') === 'true',
    };
    if (q.getAll('dryRun').some((d) => d !== 'All'))
      throw badRequest(`Invalid dryRun value: ${q.getAll('dryRun').join(',')}`);
    const { type, namespace, name, subresource } = r;
    if (
      subresource &&
      !(
        (subresource === 'status' && type.status) ||
        (subresource === 'scale' && type.scale) ||
        (subresource === 'finalize' && type.kind === 'Namespace')
      )
    ) {
      return sendError(res, pageNotFound());
    }
    if (subresource === 'status' || subresource === 'scale') write.subresource = subresource;
    const manager = write.fieldManager ?? managerFromUserAgent(req);
    switch (req.method) {
      case 'GET': {
        if (!name) {
          if (q.get('watch') === 'true' || q.get('watch') === '1')
            return watch(req, res, type, namespace, q, accept);
          return list(res, type, namespace, q, accept);
        }
        const obj = api.get(type, namespace, name);
        if (subresource === 'scale') return sendJson(res, 200, scaleOf(obj));
        if (wantsTable(accept)) {
          return sendJson(
            res,
            200,
            toTable(type, [obj], { includeObject: q.get('includeObject') ?? undefined }),
          );
        }
        return sendJson(res, 200, obj);
      }
      case 'POST': {
        if (name) throw methodNotAllowed();
        const obj = parseBody(body, contentType);
        if (obj === undefined) throw badRequest('the request body is empty');
        const created = api.create(type, namespace, obj, { ...write, fieldManager: manager });
        return sendJson(res, 201, created);
      }
      case 'PUT': {
        if (!name) throw methodNotAllowed();
        const obj = parseBody(body, contentType);
        if (subresource === 'scale') {
          const live = api.get(type, namespace, name);
          if (
            obj?.metadata?.resourceVersion &&
            obj.metadata.resourceVersion !== live.metadata.resourceVersion
          ) {
            throw new KubeStatusError(
              409,
              'Conflict',
              `Operation cannot be fulfilled on ${type.plural}.${type.group} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
            );
          }
          const next = structuredClone(live);
          next.spec.replicas = obj?.spec?.replicas ?? 0;
          delete next.metadata.resourceVersion;
          const updated = api.update(type, namespace, name, next, {
            ...write,
            subresource: undefined,
            fieldManager: manager,
          });
          return sendJson(res, 200, scaleOf(updated));
        }
        const updated = api.update(type, namespace, name, obj, {
          ...write,
          fieldManager: manager,
          ...(subresource === 'finalize' ? { subresource: undefined } : {}),
        });
        return sendJson(res, 200, updated);
      }
      case 'PATCH': {
        if (!name) throw methodNotAllowed();
        const patchBody = parseBody(
          body,
          contentType === 'application/apply-patch+yaml' ? 'yaml' : contentType,
        );
        if (subresource === 'scale') {
          const live = api.get(type, namespace, name);
          const scale = scaleOf(live);
          const { jsonMergePatch, jsonPatch } = await import('./patch.js');
          const patched =
            contentType === 'application/json-patch+json'
              ? jsonPatch(scale, patchBody)
              : jsonMergePatch(scale, patchBody);
          const replicas = patched?.spec?.replicas;
          if (typeof replicas !== 'number') throw badRequest('scale: spec.replicas must be a number');
          const updated = api.patch(
            type,
            namespace,
            name,
            'application/merge-patch+json',
            { spec: { replicas } },
            {
              ...write,
              subresource: undefined,
              fieldManager: manager,
            },
          );
          return sendJson(res, 200, scaleOf(updated));
        }
        const created = !api.store.get(typeKeyOf(type), namespace, name);
        const patched = api.patch(type, namespace, name, contentType, patchBody, {
          ...write,
          fieldManager:
            write.fieldManager ?? (contentType === 'application/apply-patch+yaml' ? undefined : manager),
        });
        return sendJson(res, created && contentType === 'application/apply-patch+yaml' ? 201 : 200, patched);
      }
      case 'DELETE': {
        const opts = parseBody(body, contentType) ?? {};
        const propagationPolicy = q.get('propagationPolicy') ?? opts.propagationPolicy;
        const dryRun = write.dryRun || (opts.dryRun ?? []).includes('All');
        if (!name) {
          const selector = parseLabelSelector(q.get('labelSelector'));
          const fields = parseFieldSelector(q.get('fieldSelector'), type.group ? undefined : type.kind);
          const items = api
            .list(type, namespace)
            .items.filter((o) => selector(o.metadata.labels) && fields(o));
          const deleted = items.map((o) =>
            api.delete(type, o.metadata.namespace, o.metadata.name, { dryRun, propagationPolicy }),
          );
          return sendJson(res, 200, {
            kind: `${type.kind}List`,
            apiVersion: apiVersionOf(type),
            metadata: { resourceVersion: String(api.store.resourceVersion) },
            items: deleted.map((o) => listItem(type, o)),
          });
        }
        const deleted = api.delete(type, namespace, name, {
          dryRun,
          propagationPolicy,
          preconditionRv: opts.preconditions?.resourceVersion,
          preconditionUid: opts.preconditions?.uid,
        });
        return sendJson(res, 200, deleted);
      }
      default:
        throw methodNotAllowed();
    }
  };

  const scaleOf = (obj: Json): Json => {
    const sel = obj.spec?.selector?.matchLabels ?? {};
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
        creationTimestamp: obj.metadata.creationTimestamp,
      },
      spec: { replicas: obj.spec?.replicas ?? 0 },
      status: {
        replicas: obj.status?.replicas ?? 0,
        selector: Object.entries(sel)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      },
    };
  };

  const list = (
    res: ServerResponse,
    type: ResourceType,
    namespace: string | undefined,
    q: URLSearchParams,
    accept: string | undefined,
  ) => {
    const selector = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'), type.group ? undefined : type.kind);
    const { items, resourceVersion } = api.list(type, namespace);
    const matched = items.filter((o) => selector(o.metadata.labels) && fields(o));
    if (wantsTable(accept)) {
      return sendJson(
        res,
        200,
        toTable(type, matched, { resourceVersion, includeObject: q.get('includeObject') ?? undefined }),
      );
    }
    return sendJson(res, 200, {
      kind: `${type.kind}List`,
      apiVersion: apiVersionOf(type),
      metadata: { resourceVersion },
      items: matched.map((o) => listItem(type, o)),
    });
  };

  const watch = (
    req: IncomingMessage,
    res: ServerResponse,
    type: ResourceType,
    namespace: string | undefined,
    q: URLSearchParams,
    accept: string | undefined,
  ) => {
    const selector = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'), type.group ? undefined : type.kind);
    const matches = (o: Json | undefined) =>
      Boolean(o) &&
      (!namespace || o.metadata.namespace === namespace) &&
      selector(o.metadata.labels) &&
      fields(o);
    const table = wantsTable(accept);
    let headerSent = false;
    const key = typeKeyOf(type);
    const rvParam = q.get('resourceVersion');
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
    });
    res.flushHeaders();
    const send = (evType: string, obj: Json) => {
      let out = { ...obj, apiVersion: apiVersionOf(type), kind: type.kind };
      if (table && evType !== 'BOOKMARK' && evType !== 'ERROR') {
        out = toTable(type, [out], {
          noHeaders: headerSent,
          includeObject: q.get('includeObject') ?? undefined,
        });
        headerSent = true;
      }
      if (evType === 'ERROR' || evType === 'BOOKMARK') out = obj;
      res.write(`${JSON.stringify({ type: evType, object: out })}\n`);
    };
    const onEvent = (ev: StoreEvent) => {
      if (ev.typeKey !== key) return;
      const now = matches(ev.object);
      if (ev.type === 'MODIFIED') {
        const before = matches(ev.prev);
        if (now && before) send('MODIFIED', ev.object);
        else if (now) send('ADDED', ev.object);
        else if (before) send('DELETED', ev.object);
      } else if (now) send(ev.type, ev.object);
    };
    let backlog: StoreEvent[] | undefined;
    if (rvParam && rvParam !== '0') {
      const since = Number(rvParam);
      backlog = Number.isFinite(since) ? store.eventsSince(since) : undefined;
      if (!backlog) {
        send(
          'ERROR',
          new KubeStatusError(
            410,
            'Expired',
            `too old resource version: ${rvParam} (${store.oldestResumableRv + 1})`,
          ).toStatus(),
        );
        res.end();
        return;
      }
    }
    const unsubscribe = store.subscribe(onEvent);
    watches.set(res, type.plural);
    if (backlog) for (const ev of backlog) onEvent(ev);
    else {
      for (const o of api.list(type, namespace).items) if (matches(o)) send('ADDED', o);
      if (bookmarks && q.get('sendInitialEvents') === 'true') {
        send('BOOKMARK', {
          kind: type.kind,
          apiVersion: apiVersionOf(type),
          metadata: {
            resourceVersion: String(store.resourceVersion),
            annotations: { 'k8s.io/initial-events-end': 'true' },
          },
        });
      }
    }
    const timers: NodeJS.Timeout[] = [];
    if (bookmarks) {
      timers.push(
        setInterval(() => {
          send('BOOKMARK', {
            kind: type.kind,
            apiVersion: apiVersionOf(type),
            metadata: { resourceVersion: String(store.resourceVersion) },
          });
        }, o.bookmarkIntervalMs),
      );
    }
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    const end = () => {
      unsubscribe();
      for (const t of timers) clearInterval(t);
      watches.delete(res);
      if (!res.writableEnded) res.end();
    };
    if (timeout > 0) timers.push(setTimeout(end, timeout * 1000));
    req.on('close', end);
    res.on('close', end);
  };

  const server = createServer((req, res) => {
    log.debug({ method: req.method, url: req.url }, 'request');
    handle(req, res).catch((err) => {
      if (!(err instanceof KubeStatusError))
        log.error({ err, method: req.method, url: req.url }, 'request failed');
      sendError(res, err);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new Error(`kube server ${o.name}: cannot listen on 127.0.0.1:${o.port}: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    server.listen(o.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  hostPort = `127.0.0.1:${port}`;
  const url = `http://127.0.0.1:${port}`;
  const kubeconfig = kubeconfigFor(o.name, url);
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    kubeconfig,
    api,
    writeKubeconfig(file: string) {
      writeFileSync(file, kubeconfig, { mode: 0o600 });
    },
    closeWatches() {
      for (const w of [...watches.keys()]) w.end();
    },
    openWatches(plural?: string) {
      return [...watches.values()].filter((p) => plural === undefined || p === plural).length;
    },
    stop() {
      stopping ??= (async () => {
        controllers.stop();
        for (const w of watches.keys()) w.end();
        watches.clear();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        store.save();
        store.dispose();
      })();
      return stopping;
    },
  };
}
