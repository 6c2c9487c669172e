import type { Logger } from '@flotilla/shared';
import { and, eq, gt, inArray, isNull, or, type SQL } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import { agentCredentials } from '../db/schema.js';
import { type AgentNatsUser, mintAgentUser, type NatsIdentity } from '../nats/identity.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import { createBatchedLookup } from '../util/batched-lookup.js';
import type { NatsRevocation } from './nats-revocation.js';
import { DEFAULT_CREDENTIAL_TTL_MS, type Registration, UnauthenticatedError } from './types.js';

/**
 * Agent credentials: issued at join and at rotation, stored hashed with the agent's NATS user,
 * checked on every call, revoked with their NATS users.
 */
export interface AgentCredentials {
  /** A new credential (and NATS user) for `cluster`, optionally superseding credential row `supersedes`. */
  issue(
    cluster: string,
    agentPublicKey: Uint8Array,
    supersedes?: number,
  ): Promise<{ agentCredential: string; expiresAt: Date; nats: Registration['nats'] }>;
  /** Revokes the live credentials `where` selects and their NATS users, except `keepNatsUser`. */
  revoke(where: SQL, cluster: string, keepNatsUser?: string): Promise<void>;
  /** Revokes every live credential of `cluster`; returns their NATS users (the caller revokes them). */
  revokeAll(cluster: string): Promise<string[]>;
  authenticate(credential: string): Promise<string | undefined>;
  rotate(
    credential: string,
    peer: string,
  ): Promise<{ cluster: string; agentCredential: string; expiresAt: Date; nats: Registration['nats'] }>;
  agentKeys(cluster: string): Promise<Uint8Array[]>;
}

export interface AgentCredentialsOptions {
  db: Db;
  audit: AuditLog;
  logger: Logger;
  revocation: NatsRevocation;
  natsIdentity: NatsIdentity;
  /** The NATS URLs agents connect to. */
  agentServers: string[];
  credentialTtlMs?: number;
  now: () => Date;
}

export function createAgentCredentials(options: AgentCredentialsOptions): AgentCredentials {
  const { db, audit, logger, now } = options;
  const credentialExpiry = () =>
    new Date(now().getTime() + (options.credentialTtlMs ?? DEFAULT_CREDENTIAL_TTL_MS));

  /** What an agent is handed for its NATS user. */
  const natsCredentials = (user: AgentNatsUser): Registration['nats'] => ({
    servers: options.agentServers,
    jwt: user.jwt,
    seed: user.seed,
    inboxPrefix: user.inboxPrefix,
  });

  const revoke = async (where: SQL, cluster: string, keepNatsUser?: string) => {
    const revoked = await db
      .update(agentCredentials)
      .set({ revokedAt: now() })
      .where(and(where, isNull(agentCredentials.revokedAt)))
      .returning({ natsUser: agentCredentials.natsUser });
    await options.revocation.revokeAndPush(
      revoked.map((r) => r.natsUser).filter((u) => u !== keepNatsUser),
      cluster,
    );
  };

  /** The live credential row: not revoked, not expired. */
  const credentialRow = async (credential: string) => {
    const [row] = await db
      .select()
      .from(agentCredentials)
      .where(
        and(
          eq(agentCredentials.credentialHash, hashSecret(credential)),
          isNull(agentCredentials.revokedAt),
          or(isNull(agentCredentials.expiresAt), gt(agentCredentials.expiresAt, now())),
        ),
      );
    return row;
  };

  /**
   * The live credential rows of many credentials in one query: every report on every status
   * stream is authenticated, and the reports queued meanwhile share the next query.
   */
  const liveCredentials = createBatchedLookup<string, typeof agentCredentials.$inferSelect>(
    async (hashes) => {
      const found = new Map<string, typeof agentCredentials.$inferSelect>();
      for (let i = 0; i < hashes.length; i += 1000) {
        const rows = await db
          .select()
          .from(agentCredentials)
          .where(
            and(
              inArray(agentCredentials.credentialHash, hashes.slice(i, i + 1000)),
              isNull(agentCredentials.revokedAt),
              or(isNull(agentCredentials.expiresAt), gt(agentCredentials.expiresAt, now())),
            ),
          );
        for (const row of rows) found.set(row.credentialHash, row);
      }
      return found;
    },
  );

  const issue: AgentCredentials['issue'] = async (cluster, agentPublicKey, supersedes) => {
    const natsUser = await mintAgentUser(options.natsIdentity, cluster);
    const agentCredential = newSecret('flt_agent');
    const expiresAt = credentialExpiry();
    await db.insert(agentCredentials).values({
      credentialHash: hashSecret(agentCredential),
      cluster,
      agentPublicKey,
      natsUser: natsUser.publicKey,
      expiresAt,
      ...(supersedes === undefined ? {} : { supersedes }),
    });
    return { agentCredential, expiresAt, nats: natsCredentials(natsUser) };
  };

  return {
    issue,
    revoke,

    async revokeAll(cluster) {
      const creds = await db
        .update(agentCredentials)
        .set({ revokedAt: new Date() })
        .where(and(eq(agentCredentials.cluster, cluster), isNull(agentCredentials.revokedAt)))
        .returning({ natsUser: agentCredentials.natsUser });
      return creds.map((c) => c.natsUser);
    },

    async authenticate(credential) {
      const row = await liveCredentials.get(hashSecret(credential));
      if (row?.supersedes != null) {
        // First use of a rotated credential: the one it replaces, and its NATS user, stop now.
        await revoke(eq(agentCredentials.id, row.supersedes), row.cluster, row.natsUser);
        await db.update(agentCredentials).set({ supersedes: null }).where(eq(agentCredentials.id, row.id));
        logger.info({ cluster: row.cluster }, 'rotated agent credential in use; the previous one is revoked');
      }
      return row?.cluster;
    },

    async rotate(credential, peer) {
      const row = await credentialRow(credential);
      if (!row) {
        await audit.record({
          action: 'agent.rotate-credential',
          actor: `agent@${peer}`,
          cluster: null,
          outcome: 'refused',
          detail: 'unknown, revoked or expired credential',
        });
        throw new UnauthenticatedError(
          'agent credential is unknown, revoked or expired: join again with a new token',
        );
      }
      // A successor issued earlier and never used (its answer was lost) is void.
      await revoke(eq(agentCredentials.supersedes, row.id), row.cluster);
      const issued = await issue(row.cluster, row.agentPublicKey, row.id);
      await audit.record({
        action: 'agent.rotate-credential',
        actor: `agent@${peer}`,
        cluster: row.cluster,
        outcome: 'ok',
        detail: `expires ${issued.expiresAt.toISOString()}`,
      });
      logger.info({ cluster: row.cluster, expiresAt: issued.expiresAt }, 'agent credential rotated');
      return { cluster: row.cluster, ...issued };
    },

    async agentKeys(cluster) {
      const rows = await db
        .select({ key: agentCredentials.agentPublicKey })
        .from(agentCredentials)
        .where(and(eq(agentCredentials.cluster, cluster), isNull(agentCredentials.revokedAt)));
      return rows.map((r) => r.key);
    },
  };
}
