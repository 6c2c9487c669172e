import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { errorMessage, FlotillaError, type Logger } from '@flotilla/shared';
import type { Access } from '../access/access.js';
import { visibleTo } from '../access/redact.js';
import { can, type Identity } from '../access/roles.js';
import type { Metrics } from '../metrics/metrics.js';
import { httpErrorOf } from './http-errors.js';
import { type ApiRequest, matchPath, parseJson, type Route, readBody, send } from './router.js';

export interface ApiServerOptions {
  /** `host:port`; port 0 picks a free one. */
  listen: string;
  /** Who a bearer token is and what it may do: every non-public route goes through it. */
  access: Access;
  routes: Route[];
  metrics: Metrics;
  logger: Logger;
  /** Largest request body (status files can be large). */
  maxBodyBytes?: number;
  /** Extra fields of the /healthz answer (e.g. whether this replica leads). */
  health?: () => Record<string, unknown>;
  /** Serve HTTPS with this certificate chain and key; plain HTTP without. */
  tls?: { certPem: string; keyPem: string };
}

export interface ApiServer {
  /** `http://host:port` (or `https://`) actually bound. */
  url: string;
  close(): Promise<void>;
}

/**
 * The admin HTTP API: JSON under /api/v1 behind bearer tokens (the bootstrap admin token or
 * API tokens with a role), plus /healthz and /metrics. Every route declares the permission it
 * needs and the environments a call acts on; the check runs here, before the handler.
 * Errors become HTTP statuses in httpErrorOf only.
 */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { logger, metrics } = options;
  const maxBody = options.maxBodyBytes ?? 256 * 1024 * 1024;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const method = req.method ?? 'GET';
    const done = (status: number) => metrics.inc('flotilla_http_requests_total', { code: String(status) });
    void (async () => {
      if (url.pathname === '/healthz') {
        send(res, { json: { ok: true, ...options.health?.() } });
        return;
      }
      if (url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(await metrics.render());
        return;
      }
      let route: Route | undefined;
      let params: Record<string, string> | undefined;
      let pathKnown = false;
      for (const r of options.routes) {
        const m = matchPath(r.path, url.pathname);
        if (!m) continue;
        pathKnown = true;
        if (r.method === method) {
          route = r;
          params = m;
          break;
        }
      }
      if (!route) {
        const status = pathKnown ? 405 : 404;
        send(res, {
          status,
          json: {
            error: `${method} ${url.pathname}: ${pathKnown ? 'method not allowed' : 'not found'}`,
            code: 'not-found',
          },
        });
        done(status);
        return;
      }
      let identity: Identity | undefined;
      const what = `${method} ${url.pathname}`;
      if (route.permission !== 'public') {
        const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
        // An OIDC token it refuses throws, saying why: a 401 through httpErrorOf.
        identity = auth ? await options.access.authenticate(auth, what) : undefined;
        if (!identity) {
          send(res, {
            status: 401,
            json: { error: 'token missing, wrong, expired or revoked', code: 'unauthenticated' },
          });
          done(401);
          return;
        }
      }
      let body: Promise<Uint8Array> | undefined;
      const bytes = () => (body ??= readBody(req, route.maxBodyBytes ?? maxBody));
      const request: ApiRequest = {
        method,
        path: url.pathname,
        params: params ?? {},
        query: url.searchParams,
        headers: req.headers,
        remoteAddress: req.socket.remoteAddress,
        actor: identity?.actor ?? 'anonymous',
        identity,
        async authorize(permission, environment) {
          if (!identity) throw new FlotillaError('unauthenticated', `${what}: no authenticated caller`);
          await options.access.authorize(identity, permission, environment ? [environment] : [], what);
        },
        bytes,
        json: async <T>() => parseJson<T>(await bytes()),
      };
      if (identity && route.permission !== 'public') {
        const permission = route.permission;
        // A caller without the permission anywhere is refused even when the body is bad (403,
        // not 400), naming the environment when the body gives one.
        const environments = can(identity, permission)
          ? await route.environments?.(request)
          : await route.environments?.(request).catch(() => undefined);
        await options.access.authorize(identity, permission, environments ?? [], what);
      }
      const response = visibleTo(identity, await route.handle(request));
      send(res, response);
      done(response.status ?? 200);
    })().catch((err) => {
      const { status, body } = httpErrorOf(err);
      if (!(err instanceof FlotillaError))
        logger.error({ err: errorMessage(err), path: url.pathname }, 'api error');
      if (!res.headersSent) send(res, { status, json: body });
      else res.destroy();
      done(status);
    });
  };
  const server: Server = options.tls
    ? createTlsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handler)
    : createServer(handler);
  const sep = options.listen.lastIndexOf(':');
  const host = options.listen.slice(0, sep).replace(/^\[|\]$/g, '');
  const port = Number(options.listen.slice(sep + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `${options.tls ? 'https' : 'http'}://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
