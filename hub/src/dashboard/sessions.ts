import { randomBytes } from 'node:crypto';

/**
 * Browser sessions of the dashboard. A browser trades the admin token once for a random
 * session id in an HttpOnly cookie, so the token itself is never kept by the browser. Sessions
 * live in the hub's memory: a hub restart logs browsers out, which costs a login and leaks
 * nothing.
 */
export interface Sessions {
  /** A new session id; the oldest session goes once `max` are open. */
  open(): string;
  /** True while `id` is an open session that has not expired. */
  valid(id: string | undefined): boolean;
  close(id: string | undefined): void;
}

export interface SessionOptions {
  /** How long a session lasts from login; default 8 h. */
  ttlMs?: number;
  /** Most sessions open at once; default 1000. */
  max?: number;
  now?: () => number;
}

export function createSessions(options: SessionOptions = {}): Sessions {
  const ttlMs = options.ttlMs ?? 8 * 3600_000;
  const max = options.max ?? 1000;
  const now = options.now ?? Date.now;
  /** id → expiry; a Map keeps insertion order, so the first key is the oldest session. */
  const expiries = new Map<string, number>();
  return {
    open() {
      const id = randomBytes(32).toString('base64url');
      while (expiries.size >= max) expiries.delete(expiries.keys().next().value!);
      expiries.set(id, now() + ttlMs);
      return id;
    },
    valid(id) {
      if (!id) return false;
      const expiry = expiries.get(id);
      if (expiry === undefined) return false;
      if (expiry <= now()) {
        expiries.delete(id);
        return false;
      }
      return true;
    },
    close(id) {
      if (id) expiries.delete(id);
    },
  };
}
