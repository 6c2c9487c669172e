import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidError } from '@flotilla/shared';
import { can, type Identity, type Permission } from '../access/roles.js';
import type { ApplyRequests } from '../apply-request/apply-request.js';
import type { PromoteResult, PromotionService, RollbackResult } from '../promotion/promotion-service.js';
import type { Pauses, PauseTarget } from '../rollout/pause.js';
import { esc, page } from './html.js';

/** What the dashboard can do: the same operations as the CLI's, through the same services. */
export const ActionKind = {
  promote: 'promote',
  approve: 'approve',
  rollback: 'rollback',
  sync: 'sync',
  pause: 'pause',
  resume: 'resume',
} as const;
export type ActionKind = (typeof ActionKind)[keyof typeof ActionKind];

const KINDS: readonly string[] = Object.values(ActionKind);

/** One action, as its confirmation form carries it. */
export type Action =
  | { kind: 'promote' | 'approve'; from: string; to: string }
  | { kind: 'rollback'; environment: string }
  | { kind: 'sync' | 'pause' | 'resume'; cluster: string }
  | { kind: 'sync' | 'pause' | 'resume'; environment: string };

/** The permission an action needs (on the environment it acts on). */
export const ACTION_PERMISSION: Record<ActionKind, Permission> = {
  promote: 'promote',
  approve: 'approve',
  rollback: 'rollback',
  sync: 'sync',
  pause: 'pause',
  resume: 'pause',
};

/** The services the dashboard's buttons call: the ones the API calls. */
export interface ActionServices {
  promotion: Pick<PromotionService, 'promote' | 'approve' | 'rollback'>;
  applyRequests: Pick<ApplyRequests, 'request'>;
  pauses: Pick<Pauses, 'pause' | 'resume'>;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Reads an action from a query string or form; a missing or malformed field is an InvalidError naming it. */
export function parseAction(params: URLSearchParams): Action {
  const kind = params.get('action') ?? '';
  if (!KINDS.includes(kind)) throw new InvalidError('action', `must be one of ${KINDS.join(', ')}`);
  const name = (field: string) => {
    const v = params.get(field) ?? '';
    if (!NAME.test(v)) throw new InvalidError(field, 'must be an environment or cluster name');
    return v;
  };
  switch (kind as ActionKind) {
    case 'promote':
    case 'approve':
      return { kind: kind as 'promote' | 'approve', from: name('from'), to: name('to') };
    case 'rollback':
      return { kind: 'rollback', environment: name('environment') };
    default: {
      const k = kind as 'sync' | 'pause' | 'resume';
      if (params.get('cluster')) return { kind: k, cluster: name('cluster') };
      return { kind: k, environment: name('environment') };
    }
  }
}

/** The action's fields, for a form's hidden inputs or a link's query. */
export function actionParams(action: Action): URLSearchParams {
  const p = new URLSearchParams({ action: action.kind });
  for (const [k, v] of Object.entries(action)) if (k !== 'kind') p.set(k, String(v));
  return p;
}

/** The environment an action acts on (a cluster's is looked up). */
export async function actionEnvironment(
  action: Action,
  environmentOf: (cluster: string) => Promise<string | undefined>,
): Promise<string | undefined> {
  if ('to' in action) return action.to;
  if ('environment' in action) return action.environment;
  return environmentOf(action.cluster);
}

/** Whether `identity` may do `kind` on `environment`: what decides that a button is shown. */
export function mayAct(identity: Identity, kind: ActionKind, environment: string): boolean {
  return can(identity, ACTION_PERMISSION[kind], environment);
}

/** What the action will do, in a sentence the confirmation page shows before anything happens. */
export function describeAction(action: Action, environment: string | undefined): string {
  switch (action.kind) {
    case 'promote':
      return `Promote ${action.from} → ${action.to}: ${action.to} gets what every ${action.from} cluster runs now, as a commit on its branch (or, if ${action.to} requires approval, a request that waits for a second person).`;
    case 'approve':
      return `Approve the promotion ${action.from} → ${action.to} that waits for approval, and run it now (gates are checked again).`;
    case 'rollback':
      return `Roll back ${action.environment}: revert the newest promotion into ${action.environment} not yet rolled back, as a commit on its branch.`;
    case 'sync':
      return 'cluster' in action
        ? `Sync cluster ${action.cluster} (environment ${environment ?? '?'}): tell its agent to apply the bundle it holds now.`
        : `Sync every cluster of ${action.environment}: tell each agent to apply the bundle it holds now.`;
    case 'pause':
      return 'cluster' in action
        ? `Pause cluster ${action.cluster}: it keeps the bundle it has, gets no new one, and promotion gates leave it out.`
        : `Pause environment ${action.environment}: its clusters keep the bundles they have and get no new ones.`;
    case 'resume':
      return 'cluster' in action
        ? `Resume cluster ${action.cluster}: the next pass catches it up.`
        : `Resume environment ${action.environment}: the next pass catches its clusters up.`;
  }
}

/** Runs the action as `actor` (the session's authenticated identity) and says what happened. */
export async function runAction(s: ActionServices, action: Action, actor: string): Promise<string> {
  const target = (a: { cluster: string } | { environment: string }): PauseTarget =>
    'cluster' in a ? { cluster: a.cluster } : { environment: a.environment };
  switch (action.kind) {
    case 'promote':
      return promoted(await s.promotion.promote({ from: action.from, to: action.to, actor }));
    case 'approve':
      return promoted(await s.promotion.approve({ from: action.from, to: action.to, actor }));
    case 'rollback':
      return rolledBack(await s.promotion.rollback(action.environment, actor));
    case 'sync': {
      const outcomes = await s.applyRequests.request(target(action), actor);
      return `Sync asked of ${outcomes.length} cluster${outcomes.length === 1 ? '' : 's'}.`;
    }
    case 'pause': {
      const p = await s.pauses.pause(target(action), null, actor);
      return `Paused ${p.scope} ${p.name}.`;
    }
    case 'resume': {
      const r = await s.pauses.resume(target(action), actor);
      return r.stillPaused
        ? `Resumed; still paused with environment ${r.stillPaused.name}.`
        : r.resumed
          ? 'Resumed.'
          : 'It was not paused.';
    }
  }
}

function promoted(r: PromoteResult): string {
  if (r.pending) return `Promotion ${r.from} → ${r.to} asked for: it waits for approval by someone else.`;
  if (!r.changed) return `${r.to} already holds what ${r.from} runs: nothing to do.`;
  return `Promoted ${r.from} → ${r.to}: ${r.to} now holds ${r.fromRevision.slice(0, 12)} as commit ${r.commit.slice(0, 12)}.`;
}

function rolledBack(r: RollbackResult): string {
  return `Rolled back ${r.environment}: reverted ${r.undid.commit.slice(0, 12)} as commit ${r.commit.slice(0, 12)}.`;
}

/**
 * Cross-site request forgery tokens bound to the session: an HMAC of the session id under a
 * key that lives in the hub's memory, so a token from one session is worthless in another and
 * no store is needed. Sessions are in memory as well: a restart ends both.
 */
export interface CsrfTokens {
  issue(sessionId: string): string;
  valid(sessionId: string, token: string | null | undefined): boolean;
}

export function createCsrfTokens(key: Uint8Array = randomBytes(32)): CsrfTokens {
  const mac = (sessionId: string) =>
    createHmac('sha256', key).update('flotilla/v1 csrf\0').update(sessionId).digest();
  return {
    issue: (sessionId) => mac(sessionId).toString('base64url'),
    valid(sessionId, token) {
      if (!token) return false;
      const given = Buffer.from(token, 'base64url');
      const expected = mac(sessionId);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

/**
 * Whether a state-changing request comes from the dashboard's own pages: its Origin (or, when
 * a browser sent none, its Referer) names the host the request was sent to.
 */
export function sameOrigin(headers: Record<string, string | string[] | undefined>): boolean {
  const host = headers.host;
  if (typeof host !== 'string' || !host) return false;
  const from = typeof headers.origin === 'string' ? headers.origin : (headers.referer as string | undefined);
  if (!from || from === 'null') return false;
  try {
    return new URL(from).host === host;
  } catch {
    return false;
  }
}

/** A button that opens an action's confirmation page (a GET form: nothing happens until confirmed). */
export function actionButton(action: Action, label: string): string {
  const inputs = [...actionParams(action)]
    .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
    .join('');
  return `<form class="act" method="get" action="/ui/act">${inputs}<button type="submit" data-action="${esc(action.kind)}">${esc(label)}</button></form>`;
}

/** The confirmation page: what the action will do, and the POST that does it. */
export function confirmPage(action: Action, description: string, csrf: string): string {
  const inputs = [...actionParams(action), ['csrf', csrf]]
    .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
    .join('');
  return page(
    'Confirm',
    `<h1>Confirm: ${esc(action.kind)}</h1><p>${esc(description)}</p>` +
      `<form method="post" action="/ui/act">${inputs}<button type="submit" id="confirm">${esc(action.kind)}</button> ` +
      `<a href="/ui/pipeline">cancel</a></form>`,
    { nav: true },
  );
}

/** What an action did (or why it was refused). */
export function resultPage(title: string, message: string, ok: boolean): string {
  return page(
    title,
    `<h1>${esc(title)}</h1><p class="${ok ? 'done' : 'err'}" id="result">${esc(message)}</p>` +
      `<p><a href="/ui/pipeline">Pipeline</a> · <a href="/ui">Fleet</a> · <a href="/ui/promotions">Promotions</a></p>`,
    { nav: true },
  );
}
