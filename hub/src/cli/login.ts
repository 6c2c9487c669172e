import { errorMessage } from '@flotilla/shared';
import { CliError, type LoginToken } from './client.js';
import { type Credentials, hubKey, type StoredLogin } from './credentials.js';

/**
 * The CLI's side of single sign-on: the OAuth 2.0 device authorization grant (RFC 8628) with
 * openid-client, a refresh when the stored ID token has expired, revocation at logout.
 * openid-client and jose are imported on use: no other command pays for them.
 */

/** What the hub announces at `GET /api/v1/auth/oidc` (access/oidc.ts's OidcAnnouncement). */
export interface Provider {
  issuer: string;
  clientId: string;
  allowHttp: boolean;
}

/** An ID token is used until this long before its `exp`, so it does not expire on its way to the hub. */
const EXPIRY_MARGIN_MS = 30_000;

async function configuration(provider: Provider) {
  const client = await import('openid-client');
  try {
    return await client.discovery(
      new URL(provider.issuer),
      provider.clientId,
      undefined,
      client.None(),
      provider.allowHttp ? { execute: [client.allowInsecureRequests] } : undefined,
    );
  } catch (err) {
    throw new CliError(`single sign-on: cannot reach the provider ${provider.issuer}: ${errorMessage(err)}`);
  }
}

/** What the user must do at the provider, as `login` prints it. */
export interface DeviceCode {
  verificationUri: string;
  verificationUriComplete: string | undefined;
  userCode: string;
  expiresInS: number;
}

/** A finished device login: the tokens the provider issued. */
export interface IssuedTokens {
  idToken: string;
  refreshToken: string | undefined;
  /** The ID token's `exp`. */
  expiresAt: Date;
}

/** `exp` of a JWT, read without verifying it (the hub verifies; the CLI only needs to know when to refresh). */
async function expiryOf(idToken: string): Promise<Date> {
  const { decodeJwt } = await import('jose');
  const { exp } = decodeJwt(idToken);
  if (typeof exp !== 'number') throw new CliError('single sign-on: the provider’s ID token has no exp');
  return new Date(exp * 1000);
}

/**
 * Runs the device authorization grant: `show` is told the code the user enters at the
 * provider, then the provider is polled (at the interval it asks for) until the user has
 * logged in there, refused, or the code expired.
 */
export async function deviceLogin(
  provider: Provider & { scope: string },
  show: (code: DeviceCode) => void,
  signal?: AbortSignal,
): Promise<IssuedTokens> {
  const client = await import('openid-client');
  const config = await configuration(provider);
  let started: Awaited<ReturnType<typeof client.initiateDeviceAuthorization>>;
  try {
    started = await client.initiateDeviceAuthorization(config, { scope: provider.scope });
  } catch (err) {
    throw new CliError(`single sign-on: the provider refused to start a device login: ${providerError(err)}`);
  }
  show({
    verificationUri: started.verification_uri,
    verificationUriComplete: started.verification_uri_complete,
    userCode: started.user_code,
    expiresInS: started.expires_in,
  });
  let tokens: Awaited<ReturnType<typeof client.pollDeviceAuthorizationGrant>>;
  try {
    tokens = await client.pollDeviceAuthorizationGrant(config, started, undefined, signal ? { signal } : {});
  } catch (err) {
    throw new CliError(`single sign-on: the login at the provider did not finish: ${providerError(err)}`);
  }
  if (!tokens.id_token)
    throw new CliError('single sign-on: the provider issued no ID token (is `openid` among the scopes?)');
  return {
    idToken: tokens.id_token,
    refreshToken: tokens.refresh_token,
    expiresAt: await expiryOf(tokens.id_token),
  };
}

/** An OAuth error as the provider put it (`access_denied: End-User aborted interaction`), else the message. */
function providerError(err: unknown): string {
  const e = err as { error?: string; error_description?: string };
  return e.error ? `${e.error}${e.error_description ? `: ${e.error_description}` : ''}` : errorMessage(err);
}

/**
 * The stored login of `hubUrl` as the client's bearer token: the ID token while it is valid,
 * else a new one through the refresh token (stored again), else a CliError asking for
 * `flotilla login`. Undefined when there is no stored login for the hub.
 */
export function storedLoginToken(
  credentials: Credentials,
  hubUrl: string,
  now: () => number = Date.now,
): LoginToken | undefined {
  let stored: StoredLogin | undefined;
  try {
    stored = credentials.get(hubUrl);
  } catch (err) {
    // A broken file shows when a call needs the token, not before.
    return {
      token: () => Promise.reject(err),
    };
  }
  if (!stored) return undefined;
  const login = stored;
  return {
    async token() {
      if (Date.parse(login.expiresAt) - EXPIRY_MARGIN_MS > now()) return login.idToken;
      if (!login.refreshToken)
        throw new CliError(
          `your login to ${hubKey(hubUrl)} expired at ${login.expiresAt}: run \`flotilla login\` again`,
        );
      const client = await import('openid-client');
      const config = await configuration(login);
      let tokens: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
      try {
        tokens = await client.refreshTokenGrant(config, login.refreshToken);
      } catch (err) {
        throw new CliError(
          `your login to ${hubKey(hubUrl)} expired and could not be renewed (${providerError(err)}): run \`flotilla login\` again`,
        );
      }
      if (!tokens.id_token)
        throw new CliError(
          `your login to ${hubKey(hubUrl)} expired and the provider renewed it without an ID token: run \`flotilla login\` again`,
        );
      const renewed: StoredLogin = {
        ...login,
        idToken: tokens.id_token,
        refreshToken: tokens.refresh_token ?? login.refreshToken,
        expiresAt: (await expiryOf(tokens.id_token)).toISOString(),
      };
      credentials.put(hubUrl, renewed);
      return renewed.idToken;
    },
  };
}

/** Revokes a stored login's refresh token at the provider (logout); the reason when it could not. */
export async function revokeAtProvider(login: StoredLogin): Promise<string | undefined> {
  if (!login.refreshToken) return undefined;
  try {
    const client = await import('openid-client');
    const config = await configuration(login);
    if (!config.serverMetadata().revocation_endpoint) return 'the provider has no revocation endpoint';
    await client.tokenRevocation(config, login.refreshToken, { token_type_hint: 'refresh_token' });
    return undefined;
  } catch (err) {
    return providerError(err);
  }
}
