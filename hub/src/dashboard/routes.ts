import type { ApiRequest, ApiResponse, Route } from '../api/router.js';
import type { AuditLog } from '../audit/audit.js';
import { secretMatches } from '../pki/secrets.js';
import type { PromotionRecord } from '../promotion/promotion-log.js';
import type { FleetView } from '../status/fleet-view.js';
import { ago } from '../util/ago.js';
import {
  CONTENT_SECURITY_POLICY,
  clusterPage,
  driftHistoryPage,
  fleetPage,
  loginPage,
  notFoundPage,
  promotionsPage,
} from './html.js';
import type { Sessions } from './sessions.js';

export interface DashboardServices {
  fleet: FleetView;
  promotions: { history(limit?: number): Promise<PromotionRecord[]> };
  audit: AuditLog;
  adminTokenHash: string;
  sessions: Sessions;
}

export const SESSION_COOKIE = 'flotilla_session';

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

function sessionOf(req: ApiRequest): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The read-only fleet dashboard under /ui: the fleet, one cluster, drift history and
 * promotions. A browser logs in once with the admin token and gets an HttpOnly, SameSite=Strict
 * session cookie; the token is never stored in the browser or put in a URL. Every page shows
 * what the CLI shows (Secret values only as keyed hashes, as agents report them).
 */
export function dashboardRoutes(s: DashboardServices): Route[] {
  const page =
    (render: (req: ApiRequest) => Promise<ApiResponse>): Route['handle'] =>
    async (req) =>
      s.sessions.valid(sessionOf(req)) ? render(req) : redirect('/ui/login');
  return [
    { method: 'GET', path: '/', public: true, handle: async () => redirect('/ui') },
    {
      method: 'GET',
      path: '/ui/login',
      public: true,
      handle: async (req) => (s.sessions.valid(sessionOf(req)) ? redirect('/ui') : html(loginPage())),
    },
    {
      method: 'POST',
      path: '/ui/login',
      public: true,
      async handle(req) {
        const form = new URLSearchParams(
          new TextDecoder().decode((await req.bytes()).slice(0, MAX_LOGIN_BYTES)),
        );
        const token = form.get('token')?.trim() ?? '';
        if (!token || !secretMatches(token, s.adminTokenHash)) {
          await s.audit.record({
            action: 'dashboard.login',
            actor: 'dashboard',
            cluster: null,
            outcome: 'refused',
            detail: 'wrong admin token',
          });
          return html(loginPage('That is not the admin token.'), 401);
        }
        const id = s.sessions.open();
        return redirect('/ui', {
          'set-cookie': `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=28800`,
        });
      },
    },
    {
      method: 'POST',
      path: '/ui/logout',
      public: true,
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
      public: true,
      handle: page(async () => {
        const [clusters, drift] = await Promise.all([s.fleet.status(), s.fleet.drift()]);
        return html(fleetPage(clusters, drift, (iso) => ago(iso)));
      }),
    },
    {
      method: 'GET',
      path: '/ui/clusters/:name',
      public: true,
      handle: page(async (req) => {
        const detail = await s.fleet.cluster(req.params.name!);
        if (!detail) return html(notFoundPage(`No cluster named ${req.params.name}.`), 404);
        return html(clusterPage(detail, (iso) => ago(iso)));
      }),
    },
    {
      method: 'GET',
      path: '/ui/drift',
      public: true,
      handle: page(async () => html(driftHistoryPage(await s.fleet.drift({ history: true })))),
    },
    {
      method: 'GET',
      path: '/ui/promotions',
      public: true,
      handle: page(async () => html(promotionsPage(await s.promotions.history(500)))),
    },
  ];
}
