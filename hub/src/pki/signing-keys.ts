import { statSync } from 'node:fs';
import { join } from 'node:path';
import {
  exportSigningKey,
  FlotillaError,
  generateSigningKey,
  importSigningKey,
  rawPublicKey,
  type SigningKey,
} from '@flotilla/shared';
import { readTextIfExists, writeFileAtomic } from '../util/files.js';

interface StoredKey {
  keyId: string;
  pem: string;
  createdAt: string;
}

/** The hub's bundle signing keys; the newest signs, all of them are handed to agents. */
export interface SigningKeyRing {
  /** The key new bundles are signed with. */
  current: SigningKey;
  /** Every active key, oldest first, so agents trust bundles signed before a rotation. */
  all: SigningKey[];
}

const FILE = 'signing-keys.json';

function load(dataDir: string): StoredKey[] {
  const text = readTextIfExists(join(dataDir, FILE));
  if (!text) return [];
  try {
    return JSON.parse(text) as StoredKey[];
  } catch (err) {
    throw new FlotillaError('internal', `${join(dataDir, FILE)}: not valid JSON`, { cause: err });
  }
}

function toRing(stored: StoredKey[]): SigningKeyRing {
  const all = stored.map((s) => importSigningKey(s.pem));
  return { all, current: all[all.length - 1]! };
}

/** Loads the signing keys, creating the first one if there is none. */
export function ensureSigningKeys(dataDir: string): { ring: SigningKeyRing; created: boolean } {
  const stored = load(dataDir);
  if (stored.length > 0) return { ring: toRing(stored), created: false };
  const key = generateSigningKey();
  const next = [{ keyId: key.keyId, pem: exportSigningKey(key), createdAt: new Date().toISOString() }];
  writeFileAtomic(join(dataDir, FILE), JSON.stringify(next, null, 2), true);
  return { ring: toRing(next), created: true };
}

/** Adds a new signing key; from the next bundle on it signs, older keys stay trusted. */
export function rotateSigningKey(dataDir: string): SigningKeyRing {
  const stored = load(dataDir);
  const key = generateSigningKey();
  stored.push({ keyId: key.keyId, pem: exportSigningKey(key), createdAt: new Date().toISOString() });
  writeFileAtomic(join(dataDir, FILE), JSON.stringify(stored, null, 2), true);
  return toRing(stored);
}

/** The public halves as agents receive them at Register. */
export function publicHubKeys(ring: SigningKeyRing): { keyId: string; publicKey: Uint8Array }[] {
  return ring.all.map((k) => ({ keyId: k.keyId, publicKey: rawPublicKey(k.publicKey) }));
}

/**
 * The signing keys as a running hub sees them: re-read when the file changes, so a
 * `flotilla hub rotate-key --data-dir` run next to a running hub takes effect at once.
 */
export interface SigningKeyStore {
  ring(): SigningKeyRing;
  rotate(): SigningKeyRing;
}

export function createSigningKeyStore(dataDir: string): SigningKeyStore {
  const path = join(dataDir, FILE);
  let ring = ensureSigningKeys(dataDir).ring;
  let stamp = statSync(path).mtimeMs;
  return {
    ring() {
      const now = statSync(path).mtimeMs;
      if (now !== stamp) {
        ring = toRing(load(dataDir));
        stamp = now;
      }
      return ring;
    },
    rotate() {
      ring = rotateSigningKey(dataDir);
      stamp = statSync(path).mtimeMs;
      return ring;
    },
  };
}
