import { FlotillaError } from '@flotilla/shared';

/**
 * What a caller may do. Scoped permissions apply per environment (a deployer of staging may
 * promote into staging, not into prod); the others are fleet-wide.
 */
export const Permission = {
  /** Read the fleet, drift, history, audit, pauses, diffs: everything but Secret-derived values. */
  Read: 'read',
  /** Secret-derived values: the keyed hashes Secret values show as in drift and diffs, bundle exports. */
  ReadSecrets: 'read-secrets',
  Sync: 'sync',
  Promote: 'promote',
  Rollback: 'rollback',
  /** Pause and resume clusters and environments, resume a halted rollout. */
  Pause: 'pause',
  /** Approve a promotion (four eyes) or a bundle held for its blast radius. */
  Approve: 'approve',
  /** Add, remove, label, move clusters, issue join tokens, import status files. */
  Clusters: 'clusters',
  /** Create, list and revoke API tokens. */
  Tokens: 'tokens',
  /** Rotate the hub's signing key. */
  Keys: 'keys',
} as const;
export type Permission = (typeof Permission)[keyof typeof Permission];

/** Permissions that are granted per environment. */
const SCOPED: ReadonlySet<Permission> = new Set<Permission>([
  'read-secrets',
  'sync',
  'promote',
  'rollback',
  'pause',
  'approve',
]);

export const ROLES = ['viewer', 'deployer', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The one table of what each role may do. */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  viewer: ['read'],
  deployer: ['read', 'read-secrets', 'sync', 'promote', 'rollback', 'pause'],
  approver: ['read', 'read-secrets', 'approve'],
  admin: Object.values(Permission),
};

/**
 * Who is calling, as authenticated: an API token, the bootstrap admin token, or (on the
 * dashboard) a session opened by one of them or by single sign-on.
 */
export interface Identity {
  /** The name the audit log records: `admin` (bootstrap token), `token:NAME`, `oidc:SUBJECT`. */
  actor: string;
  role: Role;
  /** The environments its scoped permissions apply to; empty means every environment. */
  environments: string[];
  /** For an API token: its id, to see that it is still valid (a session outlives no revocation). */
  tokenId?: number;
  /** When it stops being valid (token expiry); undefined for the bootstrap token. */
  expiresAt?: Date;
}

/** The bootstrap admin token's identity: for first use and break-glass. */
export const BOOTSTRAP_ADMIN: Identity = { actor: 'admin', role: 'admin', environments: [] };

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/**
 * Whether `identity` holds `permission`: on `environment` when given, else on at least one
 * environment (what a route checks before it knows the environments a call acts on).
 */
export function can(identity: Identity, permission: Permission, environment?: string): boolean {
  if (!ROLE_PERMISSIONS[identity.role].includes(permission)) return false;
  if (environment === undefined || !SCOPED.has(permission) || identity.role === 'admin') return true;
  return identity.environments.length === 0 || identity.environments.includes(environment);
}

/** `deployer of staging, dev` / `admin`: how a refusal describes the caller. */
export function describeIdentity(identity: Identity): string {
  const scope =
    identity.role === 'admin' || identity.environments.length === 0
      ? ''
      : ` of ${identity.environments.join(', ')}`;
  return `${identity.actor} (${identity.role}${scope})`;
}

/** A refused call: names the permission (and environment) the caller lacks, or why it may not use it. */
export class PermissionDeniedError extends FlotillaError {
  readonly permission: Permission;
  readonly environment: string | undefined;
  constructor(message: string, permission: Permission, environment?: string) {
    super('permission-denied', `permission denied: ${message}`);
    this.name = 'PermissionDeniedError';
    this.permission = permission;
    this.environment = environment;
  }

  /** `token:dora (deployer of staging) lacks promote on environment prod`. */
  static lacking(identity: Identity, permission: Permission, environment?: string): PermissionDeniedError {
    return new PermissionDeniedError(
      `${describeIdentity(identity)} lacks ${permission}${environment ? ` on environment ${environment}` : ''}`,
      permission,
      environment,
    );
  }
}
