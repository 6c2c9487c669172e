import { ErrorCode, errorMessage, FlotillaError, InvalidError } from '@flotilla/shared';
import { isMap, isSeq, parseDocument } from 'yaml';
import type { Route } from '../api/router.js';
import { type Identity, isRole, ROLES, type Role } from './roles.js';

/** What one group of the provider's groups claim grants. */
export interface OidcGrant {
  group: string;
  role: Role;
  /** Environments its scoped permissions apply to; empty: every environment. */
  environments: string[];
}

/**
 * Single sign-on (`hub start --oidc-config FILE`): the provider, this hub's dashboard as its
 * client, the CLI's public client, and which groups get which role. The client secret is read
 * from the environment in main, never from this file.
 */
export interface OidcOptions {
  /** The provider's issuer URL (its `/.well-known/openid-configuration` is read at start). */
  issuer: string;
  clientId: string;
  /**
   * The CLI's client at the provider (`flotilla login`): a public client allowed the device
   * authorization grant. ID tokens issued to it are accepted as bearer tokens by the API.
   */
  cliClientId?: string;
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
    'cliClientId',
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
  const cliClientId = str('cliClientId', false);
  return {
    issuer,
    clientId: str('clientId', true)!,
    redirectUri: url('redirectUri'),
    ...(cliClientId ? { cliClientId } : {}),
    grants,
    ...(audience ? { audience } : {}),
    ...(groupsClaim ? { groupsClaim } : {}),
    ...(scope ? { scope } : {}),
    ...(typeof skew === 'number' ? { clockSkewS: skew } : {}),
    ...(root.allowHttp === true ? { allowHttp: true } : {}),
  };
}

/** What an ID token's claims come to here: an identity, or why not (for the user and the audit log). */
export type OidcClaimsOutcome =
  | { ok: true; identity: Identity; groups: string[] }
  | { ok: false; reason: string; actor?: string };

/**
 * The one mapping from an ID token's claims to an identity, for the dashboard's login and the
 * API's bearer tokens alike: `aud` must name one of `audiences`, and the first grant whose
 * group is in the groups claim decides the role. The identity is `oidc:SUB`.
 */
export function identityOfClaims(
  claims: { sub: string; aud?: string | string[] | undefined; [claim: string]: unknown },
  options: Pick<OidcOptions, 'grants' | 'groupsClaim'>,
  audiences: readonly string[],
): OidcClaimsOutcome {
  const actor = `oidc:${claims.sub}`;
  const aud = Array.isArray(claims.aud) ? claims.aud : claims.aud === undefined ? [] : [claims.aud];
  if (!aud.some((a) => audiences.includes(a)))
    return {
      ok: false,
      actor,
      reason: `the ID token is for ${aud.join(', ') || 'no audience'}, not for ${audiences.join(' or ')} (wrong audience)`,
    };
  const raw = claims[options.groupsClaim ?? 'groups'];
  const groups = Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string') : [];
  const grant = options.grants.find((g) => groups.includes(g.group));
  if (!grant)
    return {
      ok: false,
      actor,
      reason: `${actor} is in no group that has a role here (groups: ${groups.join(', ') || 'none'})`,
    };
  return { ok: true, identity: { actor, role: grant.role, environments: grant.environments }, groups };
}

/** The audiences the API accepts an OIDC bearer token for: the dashboard's audience and the CLI's client. */
export function bearerAudiences(options: OidcOptions): string[] {
  return [
    ...new Set([options.audience ?? options.clientId, ...(options.cliClientId ? [options.cliClientId] : [])]),
  ];
}

/** A bearer token the API refuses; the reason says why (never the token). `actor` when its subject is known. */
export class OidcTokenRefusedError extends FlotillaError {
  readonly actor: string | undefined;
  constructor(reason: string, actor?: string, options?: { cause?: unknown }) {
    super(ErrorCode.Unauthenticated, `OIDC token refused: ${reason}`, options);
    this.name = 'OidcTokenRefusedError';
    this.actor = actor;
  }
}

/** A compact JWS (header.payload.signature): what an OIDC bearer token looks like, unlike an API token. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

export interface OidcBearer {
  /** The identity of an ID token (or JWT access token) of the configured issuer; throws OidcTokenRefusedError. */
  verify(token: string): Promise<{ identity: Identity; groups: string[] }>;
}

/** openid-client's default clock tolerance, so that the API and the dashboard judge `exp` alike. */
const CLOCK_TOLERANCE_S = 30;

/**
 * The fetch jose reads the issuer's JWKS with: a provider whose keys cannot be had (refused,
 * reset, timed out, not a 200) is the hub's trouble, not the caller's, so it is an Unavailable
 * error (HTTP 503 saying so) rather than a token refusal (401 "invalid token").
 */
function keysFetch(issuer: string, jwksUri: string) {
  const unavailable = (why: string, cause?: unknown) =>
    new FlotillaError(
      ErrorCode.Unavailable,
      `single sign-on: the keys of provider ${issuer} cannot be fetched from ${jwksUri} (${why}): tokens cannot be verified now; try again shortly`,
      cause === undefined ? undefined : { cause },
    );
  return async (url: string, init: RequestInit): Promise<Response> => {
    let response: Response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      const e = err as { name?: string; cause?: { code?: string } };
      throw unavailable(e.name === 'TimeoutError' ? 'timed out' : (e.cause?.code ?? errorMessage(err)), err);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw unavailable(`HTTP ${response.status}`);
    }
    return response;
  };
}

/**
 * Verifies OIDC bearer tokens for the API (`flotilla login`'s ID token): signature against the
 * issuer's JWKS (fetched from its discovery document and cached by jose), `iss`, `exp`/`nbf`
 * with the configured clock skew, then `aud` and groups through identityOfClaims.
 */
export function createOidcBearer(options: OidcOptions, now: () => number = Date.now): OidcBearer {
  let keys: Promise<ReturnType<typeof import('jose').createRemoteJWKSet>> | undefined;
  const jwks = () => {
    keys ??= (async () => {
      const { createRemoteJWKSet, customFetch } = await import('jose');
      const client = await import('openid-client');
      let jwksUri: string | undefined;
      try {
        // openid-client reads the discovery document and checks that it names this issuer.
        const configuration = await client.discovery(
          new URL(options.issuer),
          options.cliClientId ?? options.clientId,
          undefined,
          client.None(),
          options.allowHttp ? { execute: [client.allowInsecureRequests] } : undefined,
        );
        jwksUri = configuration.serverMetadata().jwks_uri;
      } catch (err) {
        throw new FlotillaError(
          ErrorCode.Unavailable,
          `single sign-on: provider ${options.issuer} unreachable: ${errorMessage(err)}`,
          { cause: err },
        );
      }
      if (!jwksUri)
        throw new FlotillaError(
          ErrorCode.Unavailable,
          `single sign-on: provider ${options.issuer} publishes no jwks_uri: its tokens cannot be verified`,
        );
      return createRemoteJWKSet(new URL(jwksUri), { [customFetch]: keysFetch(options.issuer, jwksUri) });
    })().catch((err) => {
      keys = undefined;
      throw err;
    });
    return keys;
  };
  const audiences = bearerAudiences(options);

  return {
    async verify(token) {
      const { decodeJwt, jwtVerify } = await import('jose');
      let unverified: { iss?: unknown; sub?: unknown };
      try {
        unverified = decodeJwt(token);
      } catch (err) {
        throw new OidcTokenRefusedError('not a JWT', undefined, { cause: err });
      }
      const subject = typeof unverified.sub === 'string' ? `oidc:${unverified.sub}` : undefined;
      if (unverified.iss !== options.issuer)
        throw new OidcTokenRefusedError(
          `issued by ${String(unverified.iss ?? 'nobody')}, not by ${options.issuer} (unknown issuer)`,
        );
      let claims: Awaited<ReturnType<typeof jwtVerify>>['payload'];
      try {
        ({ payload: claims } = await jwtVerify(token, await jwks(), {
          issuer: options.issuer,
          currentDate: new Date(now() + (options.clockSkewS ?? 0) * 1000),
          clockTolerance: CLOCK_TOLERANCE_S,
          requiredClaims: ['sub', 'exp'],
        }));
      } catch (err) {
        if (err instanceof FlotillaError) throw err;
        const code = (err as { code?: string }).code;
        const claim = (err as { claim?: string }).claim;
        const reason =
          code === 'ERR_JWT_EXPIRED'
            ? 'the token has expired (run `flotilla login` again)'
            : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
              ? "its signature does not verify against the issuer's keys"
              : code === 'ERR_JWKS_NO_MATCHING_KEY'
                ? 'signed by a key the issuer does not publish'
                : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
                  ? `claim ${claim}: ${errorMessage(err)}`
                  : `not a valid token of ${options.issuer}: ${errorMessage(err)}`;
        throw new OidcTokenRefusedError(reason, subject, { cause: err });
      }
      const outcome = identityOfClaims({ ...claims, sub: claims.sub! }, options, audiences);
      if (!outcome.ok) throw new OidcTokenRefusedError(outcome.reason, outcome.actor);
      return {
        identity: { ...outcome.identity, expiresAt: new Date(claims.exp! * 1000) },
        groups: outcome.groups,
      };
    },
  };
}

/** What `flotilla login` needs to know of the provider: nothing secret. */
export interface OidcAnnouncement {
  issuer: string;
  clientId: string;
  scope: string;
  /** The issuer is `http:` (a provider on localhost), as the hub's config allows. */
  allowHttp: boolean;
}

/** The scopes `flotilla login` asks for: the configured ones, plus offline_access for a refresh token. */
export function cliScope(options: OidcOptions): string {
  const scopes = (options.scope ?? 'openid profile email groups').split(/\s+/).filter(Boolean);
  return [...new Set([...scopes, 'offline_access'])].join(' ');
}

/**
 * `GET /api/v1/auth/oidc` (no token needed): the issuer, the CLI's client id and scopes, for
 * `flotilla login`. 404 when the hub has no single sign-on for the CLI.
 */
export function oidcRoutes(options: OidcOptions | undefined): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/auth/oidc',
      permission: 'public',
      async handle() {
        if (!options?.cliClientId)
          throw new FlotillaError(
            ErrorCode.NotFound,
            options
              ? 'single sign-on for the CLI is not configured on this hub: its --oidc-config has no cliClientId'
              : 'single sign-on is not configured on this hub (hub start --oidc-config FILE)',
          );
        const json: OidcAnnouncement = {
          issuer: options.issuer,
          clientId: options.cliClientId,
          scope: cliScope(options),
          allowHttp: options.allowHttp === true,
        };
        return { json };
      },
    },
  ];
}
