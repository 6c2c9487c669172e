import type { ApiResponse } from '../api/router.js';
import { secretValuesShownTo, seesSecretHashes } from '../secrets/secret-values.js';
import type { Identity } from './roles.js';

/**
 * The response as `identity` may see it, by the one Secret display policy
 * (secrets/secret-values.ts): without `read-secrets` (a viewer), the hashes Secret values show
 * as become a bare `[redacted]`.
 */
export function visibleTo(identity: Identity | undefined, response: ApiResponse): ApiResponse {
  if (seesSecretHashes(identity)) return response;
  if ('json' in response)
    return {
      ...response,
      json: JSON.parse(secretValuesShownTo(identity, JSON.stringify(response.json ?? null))),
    };
  if (!/^(text\/|application\/json)/.test(response.contentType)) return response;
  const text = secretValuesShownTo(identity, new TextDecoder().decode(response.bytes));
  return { ...response, bytes: new TextEncoder().encode(text) };
}
