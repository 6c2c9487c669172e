import type { AuditLog } from '../audit/audit.js';
import { secretMatches } from '../pki/secrets.js';
import { looksLikeJwt, type OidcBearer, OidcTokenRefusedError } from './oidc.js';
import { BOOTSTRAP_ADMIN, can, type Identity, type Permission, PermissionDeniedError } from './roles.js';
import type { TokenStore } from './token-store.js';

/**
 * The one check every API route and dashboard page goes through: who is calling
 * (authenticate) and whether they may (authorize). A refusal is audited under the caller's
 * authenticated identity and names the missing permission.
 */
export interface Access {
  /**
   * The identity behind a bearer token (an API token, the bootstrap admin token, or with single
   * sign-on an ID token of the provider); undefined when none. An OIDC token it refuses throws
   * OidcTokenRefusedError saying why, and the refusal is audited; `what` says what was called.
   */
  authenticate(token: string, what?: string): Promise<Identity | undefined>;
  /** Whether an identity authenticated earlier (a dashboard session's) is still valid: not revoked, not expired. */
  stillValid(identity: Identity): Promise<boolean>;
  /**
   * Resolves when `identity` holds `permission` on every environment in `environments` (with
   * none named: on at least one environment); else records the refusal in the audit log and
   * throws PermissionDeniedError. `what` says what was refused (`POST /api/v1/promotions`).
   */
  authorize(
    identity: Identity,
    permission: Permission,
    environments: readonly string[],
    what: string,
  ): Promise<void>;
}

export interface AccessOptions {
  /** sha256 of the bootstrap admin token (the data dir's admin-token.sha256). */
  bootstrapTokenHash: string;
  /** API tokens; without it only the bootstrap token authenticates. */
  tokens?: TokenStore;
  /** OIDC bearer tokens (`flotilla login`), with `hub start --oidc-config`. */
  oidc?: OidcBearer;
  /** Where refusals are recorded; without it they are only thrown. */
  audit?: AuditLog;
  now?: () => number;
}

export function createAccess(options: AccessOptions): Access {
  const now = options.now ?? Date.now;
  return {
    async authenticate(token, what = 'authenticate') {
      if (secretMatches(token, options.bootstrapTokenHash)) return BOOTSTRAP_ADMIN;
      if (options.oidc && looksLikeJwt(token)) {
        try {
          return (await options.oidc.verify(token)).identity;
        } catch (err) {
          if (err instanceof OidcTokenRefusedError)
            await options.audit?.record({
              action: 'access.refused',
              actor: err.actor ?? 'anonymous',
              cluster: null,
              outcome: 'refused',
              detail: `${what}: ${err.message}`,
            });
          throw err;
        }
      }
      return options.tokens?.authenticate(token);
    },
    async stillValid(identity) {
      if (identity.expiresAt && identity.expiresAt.getTime() <= now()) return false;
      if (identity.tokenId === undefined) return true;
      return (await options.tokens?.valid(identity.tokenId)) ?? false;
    },
    async authorize(identity, permission, environments, what) {
      const missing =
        environments.length === 0
          ? can(identity, permission)
            ? undefined
            : { environment: undefined }
          : environments
              .filter((e) => !can(identity, permission, e))
              .map((environment) => ({ environment }))[0];
      if (!missing) return;
      const error = PermissionDeniedError.lacking(identity, permission, missing.environment);
      await options.audit?.record({
        action: 'access.refused',
        actor: identity.actor,
        cluster: null,
        outcome: 'refused',
        detail: `${what}: ${error.message}`,
      });
      throw error;
    },
  };
}
