import { ErrorCode, errorMessage, FlotillaError, InvalidError } from '@flotilla/shared';
import * as client from 'openid-client';
import { isMap, isSeq, parseDocument } from 'yaml';
import { type Identity, isRole, ROLES, type Role } from '../access/roles.js';

/** What one group of the provider's groups claim grants. */
export interface OidcGrant {
  group: string;
  role: Role;
  /** Environments its scoped permissions apply to; empty: every environment. */
  environments: string[];
}

/**
 * Single sign-on for the dashboard (`hub start --oidc-config FILE`): the provider, this hub as
 * its client, and which groups get which role. The client secret is read from the environment
 * in main, never from this file.
 */
export interface OidcOptions {
  /** The provider's issuer URL (its `/.well-known/openid-configuration` is read at start). */
  issuer: string;
  clientId: string;
  /** Confidential client; without one the hub is a public client (PKCE only). */
  clientSecret?: string;
  /** The hub's callback as registered at the provider: `https://HUB/ui/oidc/callback`. */
  redirectUri: string;
  /** The ID token's `aud` must name this; default `clientId`. */
  audience?: string;
  /** The claim holding the user's groups; default `groups`. */
  groupsClaim?: string;
  /** In order: the first grant whose group the user is in decides the role. */
  grants: OidcGrant[];
  /** Scopes asked for; default `openid profile email groups`. */
  scope?: string;
  /** Seconds the hub's clock is taken to be off from the provider's (openid-client's clockSkew). */
  clockSkewS?: number;
  /** Allow an `http:` issuer (a provider on localhost). */
  allowHttp?: boolean;
}

/** Parses the `--oidc-config` YAML; every error names the file and field. */
export function parseOidcConfig(text: string, file = 'oidc config'): OidcOptions {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new InvalidError(file, `is not valid YAML (${doc.errors[0]!.code})`);
  const root = doc.toJS() as Record<string, unknown> | null;
  if (!root || typeof root !== 'object' || !isMap(doc.contents))
    throw new InvalidError(file, 'must be a mapping with issuer, clientId, redirectUri and groups');
  const str = (key: string, required: boolean) => {
    const v = root[key];
    if (v === undefined || v === null) {
      if (required) throw new InvalidError(`${file}: ${key}`, 'is required');
      return undefined;
    }
    if (typeof v !== 'string' || !v) throw new InvalidError(`${file}: ${key}`, 'must be a non-empty string');
    return v;
  };
  const url = (key: string) => {
    const v = str(key, true)!;
    try {
      return new URL(v).toString() && v;
    } catch {
      throw new InvalidError(`${file}: ${key}`, 'must be a URL');
    }
  };
  const known = new Set([
    'issuer',
    'clientId',
    'redirectUri',
    'audience',
    'groupsClaim',
    'groups',
    'scope',
    'clockSkew',
    'allowHttp',
  ]);
  for (const key of Object.keys(root))
    if (!known.has(key)) throw new InvalidError(`${file}: ${key}`, 'is not a known field');
  const groupsNode = doc.get('groups', true);
  if (!isSeq(groupsNode) || groupsNode.items.length === 0)
    throw new InvalidError(`${file}: groups`, 'must be a non-empty list of {group, role, environments}');
  const grants = (root.groups as unknown[]).map((g, i): OidcGrant => {
    const at = `${file}: groups[${i}]`;
    if (!g || typeof g !== 'object') throw new InvalidError(at, 'must be a mapping');
    const { group, role, environments = [] } = g as Record<string, unknown>;
    if (typeof group !== 'string' || !group) throw new InvalidError(`${at}.group`, 'is required');
    if (!isRole(role)) throw new InvalidError(`${at}.role`, `must be one of ${ROLES.join(', ')}`);
    if (!Array.isArray(environments) || environments.some((e) => typeof e !== 'string'))
      throw new InvalidError(`${at}.environments`, 'must be a list of environment names');
    return { group, role, environments: environments as string[] };
  });
  const skew = root.clockSkew;
  if (skew !== undefined && (typeof skew !== 'number' || !Number.isFinite(skew)))
    throw new InvalidError(`${file}: clockSkew`, 'must be a number of seconds');
  const issuer = url('issuer');
  const audience = str('audience', false);
  const groupsClaim = str('groupsClaim', false);
  const scope = str('scope', false);
  return {
    issuer,
    clientId: str('clientId', true)!,
    redirectUri: url('redirectUri'),
    grants,
    ...(audience ? { audience } : {}),
    ...(groupsClaim ? { groupsClaim } : {}),
    ...(scope ? { scope } : {}),
    ...(typeof skew === 'number' ? { clockSkewS: skew } : {}),
    ...(root.allowHttp === true ? { allowHttp: true } : {}),
  };
}

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
  const groupsClaim = options.groupsClaim ?? 'groups';
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
      const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (!aud.includes(audience))
        throw new OidcLoginRefusedError(
          `the ID token is for ${aud.join(', ')}, not for ${audience} (wrong audience)`,
        );
      const raw = claims[groupsClaim];
      const groups = Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string') : [];
      const grant = options.grants.find((g) => groups.includes(g.group));
      const who = `oidc:${claims.sub}`;
      if (!grant)
        throw new OidcLoginRefusedError(
          `${who} is in no group that has a role here (groups: ${groups.join(', ') || 'none'})`,
        );
      return {
        identity: { actor: who, role: grant.role, environments: grant.environments },
        groups,
      };
    },
  };
}
