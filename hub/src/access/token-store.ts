import { FlotillaError, InvalidError } from '@flotilla/shared';
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import { apiTokens } from '../db/schema.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import { type Identity, isRole, ROLES, type Role } from './roles.js';

/** What `token create` answers: the token itself, shown this once and never stored. */
export interface CreatedToken {
  name: string;
  role: Role;
  environments: string[];
  token: string;
  expiresAt: string;
}

/** A token as `token list` shows it: never the token, nor its hash. */
export interface TokenInfo {
  name: string;
  role: Role;
  environments: string[];
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  expired: boolean;
  lastUsedAt: string | null;
}

export interface TokenStore {
  create(
    input: { name: string; role: string; environments?: string[]; ttlMs?: number },
    actor: string,
  ): Promise<CreatedToken>;
  list(): Promise<TokenInfo[]>;
  revoke(name: string, actor: string): Promise<void>;
  /** The identity of a presented token; undefined when unknown, revoked or expired. */
  authenticate(presented: string): Promise<Identity | undefined>;
  /** Whether the token behind `tokenId` is still valid (a dashboard session checks at every page). */
  valid(tokenId: number): Promise<boolean>;
}

export interface TokenStoreOptions {
  db: Db;
  audit: AuditLog;
  /** Lifetime of a token created without a ttl; default 30 days. */
  defaultTtlMs?: number;
  now?: () => number;
}

export const DEFAULT_TOKEN_TTL_MS = 30 * 24 * 3600_000;

/** Token names: a person's or a machine's, as the audit log shows them (`token:NAME`). */
const NAME = /^[a-z0-9]([a-z0-9._@-]{0,62}[a-z0-9])?$/;
/** Environment names, as flotilla.yaml allows them. */
const ENVIRONMENT = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** How often a token's last use is written at most. */
const LAST_USED_EVERY_MS = 60_000;

/**
 * API tokens: random 32-byte secrets, stored as sha256 hashes (a presented token is looked up
 * by its hash, so no clear token is ever in the database or a log), each with a role, an
 * environment scope and an expiry. Creation and revocation are audited.
 */
export function createTokenStore(options: TokenStoreOptions): TokenStore {
  const { db, audit } = options;
  const now = options.now ?? Date.now;
  const defaultTtlMs = options.defaultTtlMs ?? DEFAULT_TOKEN_TTL_MS;
  return {
    async create(input, actor) {
      if (!NAME.test(input.name))
        throw new InvalidError(
          'name',
          `${JSON.stringify(input.name)} is not a token name (lowercase letters, digits, . _ @ -; at most 64)`,
        );
      if (!isRole(input.role))
        throw new InvalidError('role', `${JSON.stringify(input.role)} is not one of ${ROLES.join(', ')}`);
      const environments = [...new Set(input.environments ?? [])];
      for (const e of environments)
        if (!ENVIRONMENT.test(e))
          throw new InvalidError('environments', `${JSON.stringify(e)} is not an environment name`);
      if (input.role === 'admin' && environments.length > 0)
        throw new InvalidError('environments', 'an admin token is for every environment: give no --env');
      const ttlMs = input.ttlMs ?? defaultTtlMs;
      if (!(ttlMs > 0)) throw new InvalidError('ttl', 'must be longer than 0');
      const token = newSecret('flt_tok');
      const expiresAt = new Date(now() + ttlMs);
      const inserted = await db
        .insert(apiTokens)
        .values({
          name: input.name,
          role: input.role,
          environments,
          tokenHash: hashSecret(token),
          createdBy: actor,
          expiresAt,
        })
        .onConflictDoNothing()
        .returning({ id: apiTokens.id });
      if (inserted.length === 0) {
        await audit.record({
          action: 'token.create',
          actor,
          cluster: null,
          outcome: 'refused',
          detail: `${input.name}: exists`,
        });
        throw new FlotillaError('conflict', `token ${input.name}: already exists (revoke it first)`);
      }
      await audit.record({
        action: 'token.create',
        actor,
        cluster: null,
        outcome: 'ok',
        detail: `${input.name}: ${input.role}${environments.length ? ` of ${environments.join(', ')}` : ''}, expires ${expiresAt.toISOString()}`,
      });
      return { name: input.name, role: input.role, environments, token, expiresAt: expiresAt.toISOString() };
    },

    async list() {
      const rows = await db
        .select()
        .from(apiTokens)
        .where(isNull(apiTokens.revokedAt))
        .orderBy(asc(apiTokens.name));
      return rows.map((r) => ({
        name: r.name,
        role: r.role,
        environments: r.environments,
        createdBy: r.createdBy,
        createdAt: r.createdAt.toISOString(),
        expiresAt: r.expiresAt.toISOString(),
        expired: r.expiresAt.getTime() <= now(),
        lastUsedAt: r.lastUsedAt?.toISOString() ?? null,
      }));
    },

    async revoke(name, actor) {
      const revoked = await db
        .update(apiTokens)
        .set({ revokedAt: new Date(now()) })
        .where(and(eq(apiTokens.name, name), isNull(apiTokens.revokedAt)))
        .returning({ id: apiTokens.id });
      if (revoked.length === 0) {
        await audit.record({
          action: 'token.revoke',
          actor,
          cluster: null,
          outcome: 'refused',
          detail: `${name}: no such token`,
        });
        throw new FlotillaError('not-found', `token ${name}: no such token`);
      }
      await audit.record({ action: 'token.revoke', actor, cluster: null, outcome: 'ok', detail: name });
    },

    async authenticate(presented) {
      const [row] = await db
        .select()
        .from(apiTokens)
        .where(and(eq(apiTokens.tokenHash, hashSecret(presented)), isNull(apiTokens.revokedAt)));
      if (!row || row.expiresAt.getTime() <= now()) return undefined;
      if (!row.lastUsedAt || row.lastUsedAt.getTime() < now() - LAST_USED_EVERY_MS)
        await db.update(apiTokens).set({ lastUsedAt: sql`now()` }).where(eq(apiTokens.id, row.id));
      return {
        actor: `token:${row.name}`,
        role: row.role,
        environments: row.environments,
        tokenId: row.id,
        expiresAt: row.expiresAt,
      };
    },

    async valid(tokenId) {
      const [row] = await db
        .select({ expiresAt: apiTokens.expiresAt })
        .from(apiTokens)
        .where(and(eq(apiTokens.id, tokenId), isNull(apiTokens.revokedAt)));
      return row !== undefined && row.expiresAt.getTime() > now();
    },
  };
}
