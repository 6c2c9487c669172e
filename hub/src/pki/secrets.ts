import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { readTextIfExists, writeFileAtomic } from '../util/files.js';

/** A random secret of 32 bytes, URL-safe, prefixed so a leaked one is recognisable. */
export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** How secrets are stored: only this hash, never the value. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches(presented: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

const ADMIN_FILE = 'admin-token.sha256';

/**
 * The admin token's hash, creating the token on first call. The token itself is returned
 * only when it was just created: it is shown once and never stored.
 */
export function ensureAdminToken(dataDir: string): { hash: string; created?: string } {
  const stored = readTextIfExists(join(dataDir, ADMIN_FILE))?.trim();
  if (stored) return { hash: stored };
  const token = newSecret('flt_admin');
  const hash = hashSecret(token);
  writeFileAtomic(join(dataDir, ADMIN_FILE), `${hash}\n`, true);
  return { hash, created: token };
}
