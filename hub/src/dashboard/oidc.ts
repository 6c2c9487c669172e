import { ErrorCode, errorMessage, FlotillaError } from '@flotilla/shared';
import * as client from 'openid-client';
import { identityOfClaims, type OidcOptions } from '../access/oidc.js';
import type { Identity } from '../access/roles.js';

export { type OidcGrant, type OidcOptions, parseOidcConfig } from '../access/oidc.js';

/** A login the hub refuses: the reason is for the user and the audit log (never a token). */
export class OidcLoginRefusedError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Unauthenticated, `single sign-on refused: ${message}`, options);
    this.name = 'OidcLoginRefusedError';
  }
}

/** A login in progress: what the callback needs to finish it, kept by the hub under `state`. */
interface PendingLogin {
  verifier: string;
  nonce: string;
  expires: number;
}

export interface OidcLogin {
  /** The provider's authorization URL for a new login, and the state the callback must bring back. */
  start(): Promise<{ url: string; state: string }>;
  /**
   * Finishes the login from the callback URL: code exchanged with the PKCE verifier, ID token
   * checked (signature, issuer, audience, expiry, nonce), groups mapped to a role.
   */
  finish(callback: URL, state: string | undefined): Promise<{ identity: Identity; groups: string[] }>;
}

/** How long a login may take at the provider. */
const PENDING_MS = 10 * 60_000;
const MAX_PENDING = 1000;

/** Identity claims shown in the audit log: the subject, qualified by the issuer's host. */
export function createOidcLogin(options: OidcOptions, now: () => number = Date.now): OidcLogin {
  const pending = new Map<string, PendingLogin>();
  let configuration: Promise<client.Configuration> | undefined;
  const config = () => {
    const metadata: Partial<client.ClientMetadata> = {
      ...(options.clientSecret ? { client_secret: options.clientSecret } : {}),
      ...(options.clockSkewS ? { [client.clockSkew]: options.clockSkewS } : {}),
    };
    configuration ??= client
      .discovery(
        new URL(options.issuer),
        options.clientId,
        metadata,
        options.clientSecret ? undefined : client.None(),
        options.allowHttp ? { execute: [client.allowInsecureRequests] } : undefined,
      )
      .catch((err) => {
        configuration = undefined;
        throw new FlotillaError(
          ErrorCode.Unavailable,
          `single sign-on: provider ${options.issuer} unreachable: ${errorMessage(err)}`,
          { cause: err },
        );
      });
    return configuration;
  };
  const audience = options.audience ?? options.clientId;

  return {
    async start() {
      const c = await config();
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      for (const [k, v] of pending) if (v.expires <= now() || pending.size >= MAX_PENDING) pending.delete(k);
      pending.set(state, { verifier, nonce, expires: now() + PENDING_MS });
      const url = client.buildAuthorizationUrl(c, {
        redirect_uri: options.redirectUri,
        scope: options.scope ?? 'openid profile email groups',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      return { url: url.toString(), state };
    },

    async finish(callback, state) {
      const login = state ? pending.get(state) : undefined;
      if (state) pending.delete(state);
      if (!state || !login || login.expires <= now())
        throw new OidcLoginRefusedError('no login of this browser is in progress (start again)');
      const c = await config();
      let claims: client.IDToken | undefined;
      try {
        // The token request names the redirect URI as registered, whatever Host the browser used.
        const current = new URL(options.redirectUri);
        current.search = callback.search;
        const tokens = await client.authorizationCodeGrant(c, current, {
          pkceCodeVerifier: login.verifier,
          expectedState: state,
          expectedNonce: login.nonce,
          idTokenExpected: true,
        });
        claims = tokens.claims();
      } catch (err) {
        const e = err as { error?: string; error_description?: string };
        let claim: unknown;
        for (
          let c: unknown = err;
          c && typeof c === 'object' && claim === undefined;
          c = (c as { cause?: unknown }).cause
        )
          claim = (c as { claim?: unknown }).claim;
        const detail = e.error
          ? ` (${e.error}${e.error_description ? `: ${e.error_description}` : ''})`
          : claim === 'exp'
            ? ' (the ID token has expired)'
            : typeof claim === 'string'
              ? ` (claim ${claim})`
              : '';
        throw new OidcLoginRefusedError(
          `the provider's answer failed its checks: ${errorMessage(err)}${detail}`,
          {
            cause: err,
          },
        );
      }
      if (!claims) throw new OidcLoginRefusedError('the provider sent no ID token');
      const outcome = identityOfClaims(claims, options, [audience]);
      if (!outcome.ok) throw new OidcLoginRefusedError(outcome.reason);
      return { identity: outcome.identity, groups: outcome.groups };
    },
  };
}
