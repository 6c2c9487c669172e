import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Which git host signed a webhook call, by the header it used. */
export type WebhookSource = 'github' | 'gitlab' | 'gitea';

export type WebhookVerdict =
  | { ok: true; source: WebhookSource }
  | { ok: false; source: WebhookSource | 'unsigned'; reason: string };

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Equal in constant time, whatever the lengths (both sides hashed first). */
function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function sameHex(presented: string, expected: string): boolean {
  const a = Buffer.from(presented.toLowerCase(), 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Verifies a git host's webhook call against the hub's webhook secret: GitHub's
 * `X-Hub-Signature-256: sha256=HMAC`, Gitea's and Forgejo's `X-Gitea-Signature` /
 * `X-Forgejo-Signature: HMAC` (hex HMAC-SHA256 of the raw body), GitLab's `X-Gitlab-Token`
 * (the secret itself). Every comparison is timing-safe.
 */
export function verifyWebhook(
  headers: IncomingHttpHeaders,
  body: Uint8Array,
  secret: string,
): WebhookVerdict {
  const hmac = () => createHmac('sha256', secret).update(body).digest('hex');
  const github = header(headers, 'x-hub-signature-256');
  if (github !== undefined) {
    const hex = /^sha256=([0-9a-fA-F]{64})$/.exec(github)?.[1];
    return hex && sameHex(hex, hmac())
      ? { ok: true, source: 'github' }
      : { ok: false, source: 'github', reason: 'X-Hub-Signature-256 does not match the body' };
  }
  const gitea = header(headers, 'x-gitea-signature') ?? header(headers, 'x-forgejo-signature');
  if (gitea !== undefined) {
    return /^[0-9a-fA-F]{64}$/.test(gitea) && sameHex(gitea, hmac())
      ? { ok: true, source: 'gitea' }
      : { ok: false, source: 'gitea', reason: 'X-Gitea-Signature does not match the body' };
  }
  const gitlab = header(headers, 'x-gitlab-token');
  if (gitlab !== undefined) {
    return sameSecret(gitlab, secret)
      ? { ok: true, source: 'gitlab' }
      : { ok: false, source: 'gitlab', reason: 'X-Gitlab-Token is not the webhook secret' };
  }
  return {
    ok: false,
    source: 'unsigned',
    reason: 'no X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token header',
  };
}
