import { randomBytes } from 'node:crypto';
import { type Bundle, FlotillaError } from '@flotilla/shared';
import type { Access } from '../access/access.js';
import { OidcTokenRefusedError } from '../access/oidc.js';
import { visibleTo } from '../access/redact.js';
import { type Identity, PermissionDeniedError } from '../access/roles.js';
import type { ApiRequest, ApiResponse, Route } from '../api/router.js';
import type { AuditLog } from '../audit/audit.js';
import type { PromotionRecord } from '../promotion/promotion-log.js';
import type { RolloutStatus } from '../rollout/index.js';
import { createSecretValues, type SecretValues } from '../secrets/secret-values.js';
import type { FleetView } from '../status/fleet-view.js';
import { ago } from '../util/ago.js';
import {
  ACTION_PERMISSION,
  type Action,
  type ActionKind,
  type ActionServices,
  actionButton,
  actionEnvironment,
  confirmPage,
  createCsrfTokens,
  describeAction,
  mayAct,
  parseAction,
  resultPage,
  runAction,
  sameOrigin,
} from './actions.js';
import { pageFleet, parseFleetQuery } from './fleet-query.js';
import {
  CONTENT_SECURITY_POLICY,
  clusterPage,
  driftHistoryPage,
  esc,
  fleetPage,
  loginPage,
  notFoundPage,
  objectPage,
  page as pageHtml,
  promotionsPage,
} from './html.js';
import { findObject, objectDiff, parseRef, refKey } from './object-diff.js';
import { type OidcLogin, OidcLoginRefusedError } from './oidc.js';
import type { PipelineView } from './pipeline.js';
import { pipelinePage } from './pipeline-page.js';
import { rolloutPage } from './rollout-page.js';
import type { Sessions } from './sessions.js';

export interface DashboardServices {
  fleet: FleetView;
  promotions: { history(limit?: number): Promise<PromotionRecord[]> };
  audit: AuditLog;
  /** Who a token is (at login) and whether a session's identity may see a page. */
  access: Access;
  sessions: Sessions;
  /** Rollout waves of an environment (`/ui/rollouts/ENV`). */
  rollouts?: { status(environment: string): Promise<RolloutStatus> };
  /** Environments in promotion order with their gates (`/ui/pipeline`). */
  pipeline?: PipelineView;
  /** The bundle a cluster applied: the desired side of an object's diff. */
  bundles?: { applied(cluster: string): Promise<Bundle | undefined> };
  /**
   * How the object diff shows a Secret's values (an HMAC under the hub's key); without it, under
   * a random key of this process.
   */
  secretValues?: SecretValues;
  /** Single sign-on (authorization code with PKCE); without it only tokens log in. */
  oidc?: OidcLogin;
  /** The services behind the buttons; without them the dashboard only reads. */
  actions?: ActionServices;
}

/** The session a page is rendered for. */
interface SessionContext {
  id: string;
  identity: Identity;
}

export const SESSION_COOKIE = 'flotilla_session';
/** The state of a single sign-on in progress, bound to the browser that started it. */
const OIDC_COOKIE = 'flotilla_oidc';

/** The largest login form read: a token is 50 characters. */
const MAX_LOGIN_BYTES = 4096;

const HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function html(body: string, status = 200, headers: Record<string, string> = {}): ApiResponse {
  return {
    status,
    bytes: new TextEncoder().encode(body),
    contentType: 'text/html; charset=utf-8',
    headers: { ...HEADERS, ...headers },
  };
}

function redirect(location: string, headers: Record<string, string> = {}): ApiResponse {
  return {
    status: 303,
    bytes: new Uint8Array(),
    contentType: 'text/plain',
    headers: { location, ...headers },
  };
}

function cookieOf(req: ApiRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function sessionOf(req: ApiRequest): string | undefined {
  return cookieOf(req, SESSION_COOKIE);
}

/** `?source=app/NAME` (or `env/NAME`): the one source a page shows; undefined for all. */
function sourceParam(req: ApiRequest): string | undefined {
  return req.query.get('source') || undefined;
}

/**
 * The read-only fleet dashboard under /ui: the fleet, one cluster, drift history and
 * promotions. A browser logs in once with a token (any role: every page needs read) and gets an HttpOnly, SameSite=Strict
 * session cookie; the token is never stored in the browser or put in a URL. Every page shows
 * what the CLI shows (Secret values only as keyed hashes, as agents report them).
 */
export function dashboardRoutes(s: DashboardServices): Route[] {
  const secretValues = s.secretValues ?? createSecretValues(randomBytes(32));
  /**
   * A page: for a session whose identity is still valid and may read; Secret-derived values as
   * it may see them. A bad filter or reference is the user's to fix: a page that names the parameter.
   */
  const page =
    (render: (req: ApiRequest, session: SessionContext) => Promise<ApiResponse>): Route['handle'] =>
    async (req) => {
      const id = sessionOf(req);
      const identity = s.sessions.identity(id);
      if (!identity || !(await s.access.stillValid(identity))) {
        s.sessions.close(id);
        return redirect('/ui/login');
      }
      try {
        await s.access.authorize(identity, 'read', [], `${req.method} ${req.path}`);
      } catch (err) {
        if (err instanceof PermissionDeniedError) return html(notFoundPage(err.message), 403);
        throw err;
      }
      try {
        return visibleTo(identity, await render(req, { id: id!, identity }));
      } catch (err) {
        if (err instanceof FlotillaError && err.code === 'invalid')
          return html(
            pageHtml('Bad request', `<h1>Bad request</h1><p class="err">${esc(err.message)}</p>`, {
              nav: true,
            }),
            400,
          );
        throw err;
      }
    };
  const csrf = createCsrfTokens();
  /** The action's permission on its environment, checked (and a refusal audited) as the API checks it. */
  const authorizeAction = (identity: Identity, action: Action, env: string) =>
    s.access.authorize(identity, ACTION_PERMISSION[action.kind], [env], `dashboard ${action.kind}`);
  const environmentOf = async (cluster: string) => (await s.fleet.status(cluster))[0]?.environment;
  return [
    { method: 'GET', path: '/', permission: 'public', handle: async () => redirect('/ui') },
    {
      method: 'GET',
      path: '/ui/login',
      permission: 'public',
      handle: async (req) =>
        s.sessions.identity(sessionOf(req)) ? redirect('/ui') : html(loginPage(undefined, !!s.oidc)),
    },
    {
      method: 'POST',
      path: '/ui/login',
      permission: 'public',
      async handle(req) {
        const form = new URLSearchParams(
          new TextDecoder().decode((await req.bytes()).slice(0, MAX_LOGIN_BYTES)),
        );
        const token = form.get('token')?.trim() ?? '';
        let identity: Identity | undefined;
        let refused = 'token missing, wrong, expired or revoked';
        try {
          identity = token ? await s.access.authenticate(token, 'dashboard login') : undefined;
        } catch (err) {
          if (!(err instanceof OidcTokenRefusedError)) throw err;
          refused = err.message;
        }
        if (!identity) {
          await s.audit.record({
            action: 'dashboard.login',
            actor: 'dashboard',
            cluster: null,
            outcome: 'refused',
            detail: refused,
          });
          return html(loginPage('That token is not valid here (wrong, expired or revoked).', !!s.oidc), 401);
        }
        await s.audit.record({
          action: 'dashboard.login',
          actor: identity.actor,
          cluster: null,
          outcome: 'ok',
          detail: identity.role,
        });
        const id = s.sessions.open(identity);
        return redirect('/ui', {
          'set-cookie': `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=28800`,
        });
      },
    },
    {
      method: 'GET',
      path: '/ui/oidc/start',
      permission: 'public',
      async handle() {
        if (!s.oidc) return html(notFoundPage('Single sign-on is not configured on this hub.'), 404);
        const { url, state } = await s.oidc.start();
        // Lax, not Strict: the provider sends the browser back with a cross-site navigation.
        return redirect(url, {
          'set-cookie': `${OIDC_COOKIE}=${state}; HttpOnly; SameSite=Lax; Path=/ui/oidc; Max-Age=600`,
        });
      },
    },
    {
      method: 'GET',
      path: '/ui/oidc/callback',
      permission: 'public',
      async handle(req) {
        if (!s.oidc) return html(notFoundPage('Single sign-on is not configured on this hub.'), 404);
        const clear = `${OIDC_COOKIE}=; HttpOnly; SameSite=Lax; Path=/ui/oidc; Max-Age=0`;
        const state = cookieOf(req, OIDC_COOKIE);
        try {
          if (!state || state !== req.query.get('state'))
            throw new OidcLoginRefusedError('the answer does not belong to a login this browser started');
          const callback = new URL(`${req.path}?${req.query.toString()}`, 'http://hub');
          const { identity, groups } = await s.oidc.finish(callback, state);
          await s.audit.record({
            action: 'dashboard.login',
            actor: identity.actor,
            cluster: null,
            outcome: 'ok',
            detail: `single sign-on, groups ${groups.join(', ')}: ${identity.role}${identity.environments.length ? ` of ${identity.environments.join(', ')}` : ''}`,
          });
          const id = s.sessions.open(identity);
          // A page, not a redirect: the browser sends a SameSite=Strict cookie only on a navigation
          // this site starts, and the redirect chain began at the provider.
          return {
            ...html(
              pageHtml('Logged in', '<h1>Logged in</h1><p><a href="/ui">Continue to the dashboard</a></p>', {
                refreshS: 0,
                refreshTo: '/ui',
              }),
            ),
            headers: {
              ...HEADERS,
              'set-cookie': `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=28800`,
            },
          };
        } catch (err) {
          if (!(err instanceof OidcLoginRefusedError)) throw err;
          await s.audit.record({
            action: 'dashboard.login',
            actor: 'dashboard',
            cluster: null,
            outcome: 'refused',
            detail: err.message,
          });
          return html(loginPage(err.message, true), 401, { 'set-cookie': clear });
        }
      },
    },
    {
      method: 'POST',
      path: '/ui/logout',
      permission: 'public',
      async handle(req) {
        s.sessions.close(sessionOf(req));
        return redirect('/ui/login', {
          'set-cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0`,
        });
      },
    },
    {
      method: 'GET',
      path: '/ui',
      permission: 'public',
      handle: page(async (req) => {
        const source = sourceParam(req);
        const query = parseFleetQuery(req.query);
        const [clusters, drift] = await Promise.all([
          s.fleet.status(),
          s.fleet.drift(source ? { source } : {}),
        ]);
        return html(fleetPage(pageFleet(clusters, query), query, drift, (iso) => ago(iso), source));
      }),
    },
    {
      method: 'GET',
      path: '/ui/act',
      permission: 'public',
      handle: page(async (req, { id, identity }) => {
        if (!s.actions) return html(notFoundPage('The dashboard is read-only here.'), 404);
        const action = parseAction(req.query);
        const env = await actionEnvironment(action, environmentOf);
        if (!env) return html(notFoundPage('No such cluster.'), 404);
        try {
          await authorizeAction(identity, action, env);
        } catch (err) {
          if (err instanceof PermissionDeniedError)
            return html(resultPage('Refused', err.message, false), 403);
          throw err;
        }
        return html(confirmPage(action, describeAction(action, env), csrf.issue(id)));
      }),
    },
    {
      method: 'POST',
      path: '/ui/act',
      permission: 'public',
      async handle(req) {
        // A cross-site request is refused before anything else is read: Origin, then the session's token.
        const id = sessionOf(req);
        const identity = s.sessions.identity(id);
        const refuse = async (why: string) => {
          await s.audit.record({
            action: 'dashboard.refused',
            actor: identity?.actor ?? 'dashboard',
            cluster: null,
            outcome: 'refused',
            detail: why,
          });
          return html(resultPage('Refused', `Refused: ${why}.`, false), 403);
        };
        if (!sameOrigin(req.headers)) return refuse('the request does not come from this dashboard (Origin)');
        if (!identity || !(await s.access.stillValid(identity))) return redirect('/ui/login');
        const form = new URLSearchParams(
          new TextDecoder().decode((await req.bytes()).slice(0, MAX_LOGIN_BYTES)),
        );
        if (!csrf.valid(id!, form.get('csrf')))
          return refuse('the form’s CSRF token is missing or not this session’s');
        if (!s.actions) return html(notFoundPage('The dashboard is read-only here.'), 404);
        let action: Action;
        try {
          action = parseAction(form);
        } catch (err) {
          if (err instanceof FlotillaError) return html(resultPage('Bad request', err.message, false), 400);
          throw err;
        }
        const env = await actionEnvironment(action, environmentOf);
        if (!env) return html(notFoundPage('No such cluster.'), 404);
        try {
          await authorizeAction(identity, action, env);
          const message = await runAction(s.actions, action, identity.actor);
          return html(resultPage('Done', message, true));
        } catch (err) {
          if (!(err instanceof FlotillaError)) throw err;
          const status = err instanceof PermissionDeniedError ? 403 : err.code === 'not-found' ? 404 : 409;
          return html(resultPage('Refused', err.message, false), status);
        }
      },
    },
    {
      method: 'GET',
      path: '/ui/pipeline',
      permission: 'public',
      handle: page(async (_req, { identity }) => {
        if (!s.pipeline) return html(notFoundPage('The pipeline is not served here.'), 404);
        const { stages, configError } = await s.pipeline.stages();
        const may = (kind: ActionKind, env: string) => !!s.actions && mayAct(identity, kind, env);
        return html(pipelinePage(stages, configError, may, identity.actor));
      }),
    },
    {
      method: 'GET',
      path: '/ui/clusters/:name/object',
      permission: 'public',
      handle: page(async (req) => {
        const cluster = req.params.name!;
        const ref = parseRef(req.query.get('ref') ?? '');
        if (!ref) return html(notFoundPage('ref must be group/kind/namespace/name.'), 404);
        const detail = await s.fleet.cluster(cluster);
        if (!detail) return html(notFoundPage(`No cluster named ${cluster}.`), 404);
        const resource = detail.resources.find((r) => refKey(r) === refKey(ref));
        if (!resource) return html(notFoundPage(`Cluster ${cluster} reports no object ${refKey(ref)}.`), 404);
        const desired = findObject(await s.bundles?.applied(cluster), ref);
        return html(objectPage(cluster, resource, objectDiff(desired, resource.drift, secretValues)));
      }),
    },
    {
      method: 'GET',
      path: '/ui/clusters/:name',
      permission: 'public',
      handle: page(async (req, { identity }) => {
        const source = sourceParam(req);
        const detail = await s.fleet.cluster(req.params.name!, source ? { source } : {});
        if (!detail) return html(notFoundPage(`No cluster named ${req.params.name}.`), 404);
        const env = detail.cluster.environment;
        const cluster = detail.cluster.name;
        const buttons = s.actions
          ? [
              mayAct(identity, 'sync', env) ? actionButton({ kind: 'sync', cluster }, 'Sync') : '',
              mayAct(identity, 'pause', env)
                ? detail.cluster.paused?.scope === 'cluster'
                  ? actionButton({ kind: 'resume', cluster }, 'Resume')
                  : actionButton({ kind: 'pause', cluster }, 'Pause')
                : '',
            ].join('')
          : '';
        return html(clusterPage(detail, (iso) => ago(iso), source, buttons));
      }),
    },
    {
      method: 'GET',
      path: '/ui/drift',
      permission: 'public',
      handle: page(async (req) => {
        const source = sourceParam(req);
        return html(
          driftHistoryPage(await s.fleet.drift({ history: true, ...(source ? { source } : {}) }), source),
        );
      }),
    },
    {
      method: 'GET',
      path: '/ui/promotions',
      permission: 'public',
      handle: page(async () => html(promotionsPage(await s.promotions.history(500)))),
    },
    {
      method: 'GET',
      path: '/ui/rollouts/:environment',
      permission: 'public',
      handle: page(async (req) => {
        if (!s.rollouts) return html(notFoundPage('Rollouts are not served here.'), 404);
        try {
          return html(rolloutPage(await s.rollouts.status(req.params.environment!)));
        } catch (err) {
          if ((err as { code?: string }).code === 'not-found')
            return html(notFoundPage(`No environment named ${req.params.environment}.`), 404);
          throw err;
        }
      }),
    },
  ];
}
