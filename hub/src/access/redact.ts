import type { ApiResponse } from '../api/router.js';
import { can, type Identity } from './roles.js';

/** A Secret value as drift, status and diffs show it (shared's redactSecretValue): a keyed hash. */
const SECRET_HASH = /\[redacted [0-9a-f]{12}\]/g;

/**
 * The response as `identity` may see it: without `read-secrets` (a viewer), the hashes Secret
 * values show as become a bare `[redacted]`, so not even whether two values are equal, or
 * changed, is shown.
 */
export function visibleTo(identity: Identity | undefined, response: ApiResponse): ApiResponse {
  if (!identity || can(identity, 'read-secrets')) return response;
  if ('json' in response)
    return {
      ...response,
      json: JSON.parse(JSON.stringify(response.json ?? null).replace(SECRET_HASH, '[redacted]')),
    };
  if (!/^(text\/|application\/json)/.test(response.contentType)) return response;
  const text = new TextDecoder().decode(response.bytes).replace(SECRET_HASH, '[redacted]');
  return { ...response, bytes: new TextEncoder().encode(text) };
}
