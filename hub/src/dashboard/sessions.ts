import { randomBytes } from 'node:crypto';
import type { Identity } from '../access/roles.js';

/**
 * Browser sessions of the dashboard. A browser trades a token once for a random session id in
 * an HttpOnly cookie, so the token itself is never kept by the browser; the session holds the
 * token's identity, which every page checks again (access.stillValid, access.authorize). Sessions
 * live in the hub's memory: a hub restart logs browsers out, which costs a login and leaks
 * nothing.
 */
export interface Sessions {
  /** A new session id for `identity`; the oldest session goes once `max` are open. */
  open(identity: Identity): string;
  /** The identity of `id` while it is an open session that has not expired. */
  identity(id: string | undefined): Identity | undefined;
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
  /** id → session; a Map keeps insertion order, so the first key is the oldest session. */
  const sessions = new Map<string, { expiry: number; identity: Identity }>();
  return {
    open(identity) {
      const id = randomBytes(32).toString('base64url');
      while (sessions.size >= max) sessions.delete(sessions.keys().next().value!);
      sessions.set(id, { expiry: now() + ttlMs, identity });
      return id;
    },
    identity(id) {
      if (!id) return undefined;
      const session = sessions.get(id);
      if (!session) return undefined;
      if (session.expiry <= now()) {
        sessions.delete(id);
        return undefined;
      }
      return session.identity;
    },
    close(id) {
      if (id) sessions.delete(id);
    },
  };
}
