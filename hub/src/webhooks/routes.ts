import type { Route } from '../api/router.js';
import type { AuditLog } from '../audit/audit.js';
import { createCoalescer, createRateLimiter } from './limits.js';
import { verifyWebhook } from './verify.js';

/** How the git webhook is guarded. Defaults are applied in webhookRoutes only. */
export interface WebhookOptions {
  /**
   * The secret git hosts sign with. With it, a call without a valid signature is a 401 and
   * audited. Without it the webhook takes unsigned calls: it carries nothing the hub trusts
   * (the hub fetches its own configured repository), and the rate limit and coalescing bound
   * what a caller can make it do.
   */
  secret?: string;
  /** Calls per minute per source address after the burst; default 60. */
  perMinute?: number;
  /** Calls a source may make at once; default 20. */
  burst?: number;
}

/** The largest webhook body read: GitHub caps payloads at 25 MB; a push event is far smaller. */
const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

/**
 * `POST /api/v1/webhooks/git`: a git host says the source changed, so the hub fetches now
 * rather than at the next poll. Rate-limited per source (429), verified against the secret
 * (401, audited), then coalesced: one fetch in flight and one queued, whatever the flood.
 */
export function webhookRoutes(s: {
  options: WebhookOptions;
  audit: AuditLog;
  trigger(reason: string): Promise<unknown>;
}): Route[] {
  const { secret } = s.options;
  const limiter = createRateLimiter({ perMinute: s.options.perMinute ?? 60, burst: s.options.burst ?? 20 });
  const fetchSoon = createCoalescer(() => s.trigger('webhook'));
  return [
    {
      method: 'POST',
      path: '/api/v1/webhooks/git',
      // A git host holds no hub token: it authenticates with the webhook secret, checked here.
      permission: 'public',
      maxBodyBytes: MAX_WEBHOOK_BYTES,
      async handle(req) {
        const from = req.remoteAddress ?? 'unknown';
        if (!limiter.take(from))
          return {
            status: 429,
            json: { error: `webhook: too many calls from ${from}; try again shortly`, code: 'rate-limited' },
          };
        if (secret) {
          const verdict = verifyWebhook(req.headers, await req.bytes(), secret);
          if (!verdict.ok) {
            await s.audit.record({
              action: 'webhook.refused',
              actor: `webhook@${from}`,
              cluster: null,
              outcome: 'refused',
              detail: `${verdict.source}: ${verdict.reason}`,
            });
            return { status: 401, json: { error: `webhook: ${verdict.reason}`, code: 'unauthenticated' } };
          }
        }
        return { status: 202, json: { accepted: true, ...fetchSoon() } };
      },
    },
  ];
}
