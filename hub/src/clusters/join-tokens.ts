import { FlotillaError, InvalidError, type Logger } from '@flotilla/shared';
import { and, eq, gt, isNull, sql } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import { agentCredentials, bootstrapTokens } from '../db/schema.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import type { SigningKeyRing } from '../pki/signing-keys.js';
import { publicHubKeys } from '../pki/signing-keys.js';
import type { AgentCredentials } from './agent-credentials.js';
import {
  type AddedCluster,
  type Cluster,
  DEFAULT_TOKEN_TTL_MS,
  type Registration,
  UnauthenticatedError,
} from './types.js';

/** Single-use bootstrap tokens: issued for a cluster, claimed once by Register. */
export interface JoinTokens {
  /** A new token for `cluster` and the row that stores it hashed (insert it in the caller's transaction). */
  create(cluster: string, ttlMs: number): { token: string; row: typeof bootstrapTokens.$inferInsert };
  joinCommand(token: string): string;
  /** A new token for an existing cluster, audited as `cluster.token`. */
  issue(name: string, input: { ttlMs?: number }, actor: string): Promise<AddedCluster>;
  register(input: {
    token: string;
    agentPublicKey: Uint8Array;
    agentVersion: string;
    peer: string;
  }): Promise<Registration>;
}

export interface JoinTokensOptions {
  db: Db;
  audit: AuditLog;
  logger: Logger;
  credentials: AgentCredentials;
  getCluster(name: string): Promise<Cluster | undefined>;
  signingKeys: () => SigningKeyRing;
  grpcAddress: () => string;
  caHash: string;
}

export function createJoinTokens(options: JoinTokensOptions): JoinTokens {
  const { db, audit, logger, credentials } = options;

  const joinCommand = (token: string) =>
    `npx flotilla-agent join --hub ${options.grpcAddress()} --token ${token} --ca-hash ${options.caHash}`;

  /** Stored hashed; its expiry is held against the database's clock. */
  const create = (cluster: string, ttlMs: number) => {
    const token = newSecret('flt_join');
    return {
      token,
      row: { tokenHash: hashSecret(token), cluster, expiresAt: new Date(Date.now() + ttlMs) },
    };
  };

  return {
    create,
    joinCommand,

    async issue(name, input, actor) {
      const ttlMs = input.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
      if (!(ttlMs > 0)) throw new InvalidError('ttl', 'must be positive');
      if (!(await options.getCluster(name))) {
        await audit.record({
          action: 'cluster.token',
          actor,
          cluster: name,
          outcome: 'refused',
          detail: 'not found',
        });
        throw new FlotillaError('not-found', `cluster ${name}: not found`);
      }
      const { token, row } = create(name, ttlMs);
      await db.insert(bootstrapTokens).values(row);
      await audit.record({
        action: 'cluster.token',
        actor,
        cluster: name,
        outcome: 'ok',
        detail: `token expires in ${Math.round(ttlMs / 1000)}s; joining with it replaces the current agent`,
      });
      return { name, token, joinCommand: joinCommand(token) };
    },

    async register({ token, agentPublicKey, agentVersion, peer }) {
      const refuse = async (cluster: string | null, why: string): Promise<never> => {
        await audit.record({
          action: 'agent.register',
          actor: `agent@${peer}`,
          cluster,
          outcome: 'refused',
          detail: why,
        });
        throw new UnauthenticatedError('bootstrap token is invalid, already used or expired');
      };
      if (agentPublicKey.length !== 32) {
        throw new InvalidError('agent_public_key', 'must be a raw 32-byte ed25519 public key');
      }
      const tokenHash = hashSecret(token);
      // One conditional UPDATE: of two concurrent joins with one token, exactly one gets a row.
      const [claimed] = await db
        .update(bootstrapTokens)
        .set({ usedAt: sql`now()` })
        .where(
          and(
            eq(bootstrapTokens.tokenHash, tokenHash),
            isNull(bootstrapTokens.usedAt),
            gt(bootstrapTokens.expiresAt, sql`now()`),
          ),
        )
        .returning({ cluster: bootstrapTokens.cluster });
      if (!claimed) {
        const [known] = await db
          .select()
          .from(bootstrapTokens)
          .where(eq(bootstrapTokens.tokenHash, tokenHash));
        if (!known) return refuse(null, 'unknown token');
        return refuse(known.cluster, known.usedAt ? 'token already used' : 'token expired');
      }
      const cluster = await options.getCluster(claimed.cluster);
      if (!cluster) return refuse(claimed.cluster, 'cluster no longer exists');
      // One agent per cluster: a join (again) replaces whatever agent held the cluster before.
      await credentials.revoke(eq(agentCredentials.cluster, cluster.name), cluster.name);
      const issued = await credentials.issue(cluster.name, agentPublicKey);
      await audit.record({
        action: 'agent.register',
        actor: `agent@${peer}`,
        cluster: cluster.name,
        outcome: 'ok',
        detail: `agent ${agentVersion || 'unknown version'}`,
      });
      logger.info({ cluster: cluster.name, peer }, 'agent registered');
      return {
        cluster: cluster.name,
        environment: cluster.environment,
        labels: cluster.labels,
        agentCredential: issued.agentCredential,
        credentialExpiresAt: issued.expiresAt,
        nats: issued.nats,
        hubKeys: publicHubKeys(options.signingKeys()),
      };
    },
  };
}
