/**
 * The one policy for how a Secret's values are shown wherever the hub shows them: the env diff,
 * the dashboard's object diff, and drift and status as agents report them.
 *
 * - Nobody is ever shown a clear value, nor its base64.
 * - An identity with `read-secrets` sees keyed hashes, `[redacted 0123456789ab]`: an HMAC-SHA256
 *   under a key only the hub holds (agents hash the drift they report under their own key), so
 *   equal values show equal and a changed value shows changed, while someone holding a hash
 *   cannot test guesses of a weak value offline. A SOPS-encrypted value, which the hub cannot
 *   read, shows as `[encrypted <hash of its ciphertext>]`.
 * - Any other identity (a viewer) sees `[redacted]` for each, so not even whether two values
 *   are equal, or changed.
 *
 * Pages and API answers are rendered with hashes; {@link secretValuesShownTo} turns them into
 * what the identity they are for may see, at the edge (the API server, the dashboard's pages).
 */
import { createHash } from 'node:crypto';
import { type KubeObject, redactSecretValue } from '@flotilla/shared';
import { isSopsValue } from '@flotilla/shared/sops';
import { can, type Identity } from '../access/roles.js';

/** What a viewer sees for every Secret value. */
export const REDACTED = '[redacted]';

/** A Secret value as a keyed hash (shared's redactSecretValue, agents' and the hub's), or a SOPS ciphertext's hash. */
const SHOWN_AS_HASH = /\[(redacted|encrypted) [0-9a-f]{12}\]/g;

/** The fields of a `v1 Secret` that hold its values. */
export const SECRET_VALUE_FIELDS = ['data', 'stringData'] as const;

/** Hashes Secret values under the hub's key. */
export interface SecretValues {
  /** `value` as an identity with `read-secrets` sees it: `[redacted <HMAC>]`; `[encrypted <hash>]` for SOPS ciphertext. */
  shown(value: unknown): string;
}

/** `key`: the hub's Secret-hash key (shared's secretHashKey of a secret only the hub holds). */
export function createSecretValues(key: Uint8Array): SecretValues {
  return {
    shown: (value) => (isSopsValue(value) ? encryptedValueShown(value) : redactSecretValue(value, key)),
  };
}

/**
 * A SOPS-encrypted value: a hash of its ciphertext (random per encryption, so nothing to guess
 * from), which tells which encrypted values differ and shows a promoted file's as unchanged.
 */
export function encryptedValueShown(ciphertext: string): string {
  return `[encrypted ${createHash('sha256').update(ciphertext).digest('hex').slice(0, 12)}]`;
}

/** Whether `identity` sees Secret values as hashes; undefined is the hub itself (no access control). */
export function seesSecretHashes(identity: Identity | undefined): boolean {
  return !identity || can(identity, 'read-secrets');
}

/** `text` (a page, a JSON answer) as `identity` may see it: without `read-secrets`, each hash a bare `[redacted]`. */
export function secretValuesShownTo(identity: Identity | undefined, text: string): string {
  return seesSecretHashes(identity) ? text : text.replace(SHOWN_AS_HASH, REDACTED);
}

/**
 * A copy of `object` with a `v1 Secret`'s values shown (hashed) and its SOPS metadata (the
 * encrypted data key) left out as `[redacted]`; any other object as it is.
 */
export function withSecretValuesShown(object: KubeObject, values: SecretValues): KubeObject {
  const copy = structuredClone(object) as KubeObject & Record<string, unknown>;
  if (object.kind !== 'Secret' || object.apiVersion !== 'v1') return copy;
  for (const field of SECRET_VALUE_FIELDS) {
    const entries = copy[field];
    if (entries && typeof entries === 'object')
      copy[field] = Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, values.shown(v)]));
  }
  if ('sops' in copy) copy.sops = REDACTED;
  return copy;
}
