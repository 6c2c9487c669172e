import { assertClusterName, FlotillaError, InvalidError, type Logger } from '@flotilla/shared';
import { and, eq, gt, inArray, isNull, or, type SQL, sql } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import {
  agentCredentials,
  bootstrapTokens,
  bundles,
  clusterStatus,
  clusters,
  drift,
  pendingSyncs,
  renderState,
  resourceStatus,
  statusReports,
} from '../db/schema.js';
import { type AgentNatsUser, mintAgentUser, type NatsIdentity, revokeNatsUser } from '../nats/identity.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import type { SigningKeyRing } from '../pki/signing-keys.js';
import { publicHubKeys } from '../pki/signing-keys.js';
import { createBatchedLookup } from '../util/batched-lookup.js';
import { assertLabels } from './selector.js';

/** A registered cluster as the hub's DB holds it. */
export interface Cluster {
  name: string;
  environment: string;
  labels: Record<string, string>;
  createdAt: Date;
}

/** A change of labels: keys to set to a value, keys to remove. */
export interface LabelChange {
  set?: Record<string, string>;
  remove?: string[];
}

/** What `cluster add` hands to the operator, once: the token is never shown again. */
export interface AddedCluster {
  name: string;
  token: string;
  joinCommand: string;
}

/** What a successful Register returns to the agent. */
export interface Registration {
  cluster: string;
  environment: string;
  labels: Record<string, string>;
  agentCredential: string;
  /** When the credential stops working; the agent rotates it well before. */
  credentialExpiresAt: Date;
  nats: { servers: string[]; jwt: string; seed: string; inboxPrefix: string };
  hubKeys: { keyId: string; publicKey: Uint8Array }[];
}

export interface ClusterServiceOptions {
  db: Db;
  audit: AuditLog;
  logger: Logger;
  nats: {
    identity: NatsIdentity;
    /** Where revocations are persisted. */
    dataDir: string;
    /** The NATS URLs agents connect to. */
    agentServers: string[];
    /** Pushes a re-signed account JWT to the servers (revocation). */
    updateAccount(accountJwt: string): Promise<void>;
    /** Removes a cluster's bundles from the stream (a removed cluster's desired state, Secrets included, must not linger). */
    forget?(cluster: string): Promise<void>;
  };
  signingKeys: () => SigningKeyRing;
  /** `HOST:PORT` of the gRPC endpoint as agents reach it. */
  grpcAddress: () => string;
  caHash: string;
  /** Called after a cluster is added, so it is rendered at once. */
  onAdded?: (cluster: Cluster) => void;
  /** The environments flotilla.yaml declares (last good config), if known: a move elsewhere is refused. */
  environments?: () => string[] | undefined;
  /** Called after a cluster's labels or environment changed, so it is rendered again at once. */
  onChanged?: (cluster: Cluster) => void;
  /** Called after a cluster is removed, e.g. to close its status stream. */
  onRemoved?: (cluster: string) => void;
  /** Lifetime of an agent credential; default 90 days. Agents rotate after a third of it. */
  credentialTtlMs?: number;
  now?: () => Date;
}

/** Default lifetime of an agent credential. */
export const DEFAULT_CREDENTIAL_TTL_MS = 90 * 86_400_000;

/** Default lifetime of a bootstrap token. */
export const DEFAULT_TOKEN_TTL_MS = 24 * 3600_000;

/** Refused registration: the agent learns only that, the audit log learns why. */
export class UnauthenticatedError extends FlotillaError {
  constructor(message: string) {
    super('unauthenticated', message);
    this.name = 'UnauthenticatedError';
  }
}

/**
 * Clusters and their identity: add (with a single-use bootstrap token), list, remove
 * (revoking the agent credential and NATS user), Register, and agent authentication.
 * Labels come from here only; an agent can neither set nor change them.
 */
export interface ClusterService {
  add(
    input: { name: string; environment: string; labels?: Record<string, string>; ttlMs?: number },
    actor: string,
  ): Promise<AddedCluster>;
  /**
   * A new bootstrap token for an existing cluster, to join it again (a rebuilt cluster, a lost
   * state dir, an expired credential). The join it is used for revokes the cluster's earlier
   * agent credentials and NATS users: one agent per cluster.
   */
  issueToken(name: string, input: { ttlMs?: number }, actor: string): Promise<AddedCluster>;
  list(): Promise<Cluster[]>;
  get(name: string): Promise<Cluster | undefined>;
  /**
   * Sets and removes labels (`flotilla cluster label NAME k=v k2-`), audited with the change.
   * The cluster is rendered again at once: groups and apps it now selects or left follow.
   */
  label(name: string, change: LabelChange, actor: string): Promise<Cluster>;
  /** Moves a cluster to another environment (`flotilla cluster move NAME --env E`), audited. */
  move(name: string, environment: string, actor: string): Promise<Cluster>;
  remove(name: string, actor: string): Promise<void>;
  register(input: {
    token: string;
    agentPublicKey: Uint8Array;
    agentVersion: string;
    peer: string;
  }): Promise<Registration>;
  /** The cluster an agent credential belongs to, or undefined when unknown, revoked or expired. */
  authenticate(credential: string): Promise<string | undefined>;
  /**
   * A new credential for the agent holding `credential`, with a new expiry. The old one keeps
   * working until the new one is first used; a second rotation with the old one (its answer was
   * lost) voids the unused first. Unknown, revoked or expired: UnauthenticatedError.
   */
  rotateCredential(
    credential: string,
    peer: string,
  ): Promise<{ cluster: string; agentCredential: string; expiresAt: Date; nats: Registration['nats'] }>;
  /** Agent public keys stored at registration (verify air-gapped status files). */
  agentKeys(cluster: string): Promise<Uint8Array[]>;
}

export function createClusterService(options: ClusterServiceOptions): ClusterService {
  const { db, audit, logger } = options;
  const now = options.now ?? (() => new Date());
  const credentialExpiry = () =>
    new Date(now().getTime() + (options.credentialTtlMs ?? DEFAULT_CREDENTIAL_TTL_MS));

  const joinCommandFor = (token: string) =>
    `npx flotilla-agent join --hub ${options.grpcAddress()} --token ${token} --ca-hash ${options.caHash}`;

  /** Revokes NATS users in the account JWT and pushes it; a failed push is retried on reconnect. */
  const revokeNatsUsers = async (users: string[], cluster: string) => {
    let accountJwt: string | undefined;
    for (const u of users) accountJwt = await revokeNatsUser(options.nats.dataDir, options.nats.identity, u);
    if (!accountJwt) return;
    await options.nats
      .updateAccount(accountJwt)
      .catch((err) =>
        logger.warn(
          { cluster, err: String(err) },
          'nats revocation not pushed; it is pushed when NATS is back (reconnect) or at next start',
        ),
      );
  };

  /**
   * Revokes the live credentials `where` selects and their NATS users, except `keepNatsUser`
   * (a rotated credential that, so far, carried the same user).
   */
  const revokeCredentials = async (where: SQL, cluster: string, keepNatsUser?: string) => {
    const revoked = await db
      .update(agentCredentials)
      .set({ revokedAt: now() })
      .where(and(where, isNull(agentCredentials.revokedAt)))
      .returning({ natsUser: agentCredentials.natsUser });
    await revokeNatsUsers(
      revoked.map((r) => r.natsUser).filter((u) => u !== keepNatsUser),
      cluster,
    );
  };

  /** What an agent is handed for its NATS user. */
  const natsCredentials = (user: AgentNatsUser): Registration['nats'] => ({
    servers: options.nats.agentServers,
    jwt: user.jwt,
    seed: user.seed,
    inboxPrefix: user.inboxPrefix,
  });

  /** A single-use join token for `cluster`, stored hashed; its expiry is held against the database's clock. */
  const tokenRow = (cluster: string, token: string, ttlMs: number) => ({
    tokenHash: hashSecret(token),
    cluster,
    expiresAt: new Date(Date.now() + ttlMs),
  });

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

  const get = async (name: string): Promise<Cluster | undefined> => {
    const [row] = await db.select().from(clusters).where(eq(clusters.name, name));
    return row;
  };

  const notFound = async (action: string, name: string, actor: string): Promise<never> => {
    await audit.record({ action, actor, cluster: name, outcome: 'refused', detail: 'not found' });
    throw new FlotillaError('not-found', `cluster ${name}: not found`);
  };

  return {
    get,
    async label(name, change, actor) {
      const set = change.set ?? {};
      const remove = change.remove ?? [];
      assertLabels(set);
      for (const k of remove) {
        if (typeof k !== 'string') throw new InvalidError('remove', 'must be a list of label keys');
        if (Object.hasOwn(set, k)) throw new InvalidError(`label ${k}`, 'is both set and removed');
      }
      // Read and write in one transaction, so two concurrent changes of different keys both stay.
      const result = await db.transaction(async (tx) => {
        const [row] = await tx.select().from(clusters).where(eq(clusters.name, name)).for('update');
        if (!row) return undefined;
        const labels = { ...row.labels, ...set };
        for (const k of remove) delete labels[k];
        const [updated] = await tx
          .update(clusters)
          .set({ labels })
          .where(eq(clusters.name, name))
          .returning();
        return { before: row.labels, after: updated! };
      });
      if (!result) return notFound('cluster.label', name, actor);
      const detail = labelChangeText(result.before, result.after.labels);
      await audit.record({ action: 'cluster.label', actor, cluster: name, outcome: 'ok', detail });
      logger.info({ cluster: name, change: detail }, 'cluster labels changed');
      if (detail !== 'no change') options.onChanged?.(result.after);
      return result.after;
    },

    async move(name, environment, actor) {
      assertClusterName(environment);
      const known = options.environments?.();
      if (known && !known.includes(environment))
        throw new InvalidError(
          'environment',
          `${environment} is not declared in flotilla.yaml (environments: ${known.join(', ')})`,
        );
      const [before] = await db.select().from(clusters).where(eq(clusters.name, name));
      if (!before) return notFound('cluster.move', name, actor);
      const [updated] = await db
        .update(clusters)
        .set({ environment })
        .where(eq(clusters.name, name))
        .returning();
      if (!updated) return notFound('cluster.move', name, actor);
      await audit.record({
        action: 'cluster.move',
        actor,
        cluster: name,
        outcome: 'ok',
        detail:
          before.environment === environment
            ? `already in environment ${environment}`
            : `environment ${before.environment} → ${environment}`,
      });
      logger.info({ cluster: name, from: before.environment, to: environment }, 'cluster moved');
      if (before.environment !== environment) options.onChanged?.(updated);
      return updated;
    },

    async issueToken(name, input, actor) {
      const ttlMs = input.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
      if (!(ttlMs > 0)) throw new InvalidError('ttl', 'must be positive');
      if (!(await get(name))) {
        await audit.record({
          action: 'cluster.token',
          actor,
          cluster: name,
          outcome: 'refused',
          detail: 'not found',
        });
        throw new FlotillaError('not-found', `cluster ${name}: not found`);
      }
      const token = newSecret('flt_join');
      await db.insert(bootstrapTokens).values(tokenRow(name, token, ttlMs));
      await audit.record({
        action: 'cluster.token',
        actor,
        cluster: name,
        outcome: 'ok',
        detail: `token expires in ${Math.round(ttlMs / 1000)}s; joining with it replaces the current agent`,
      });
      return { name, token, joinCommand: joinCommandFor(token) };
    },

    async add(input, actor) {
      assertClusterName(input.name);
      assertClusterName(input.environment);
      const labels = input.labels ?? {};
      assertLabels(labels);
      const ttlMs = input.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
      if (!(ttlMs > 0)) throw new InvalidError('ttl', 'must be positive');
      const token = newSecret('flt_join');
      const inserted = await db.transaction(async (tx) => {
        const rows = await tx
          .insert(clusters)
          .values({ name: input.name, environment: input.environment, labels })
          .onConflictDoNothing()
          .returning();
        if (rows.length === 0) return undefined;
        await tx.insert(bootstrapTokens).values(tokenRow(input.name, token, ttlMs));
        return rows[0]!;
      });
      if (!inserted) {
        await audit.record({
          action: 'cluster.add',
          actor,
          cluster: input.name,
          outcome: 'refused',
          detail: 'already exists',
        });
        throw new FlotillaError('conflict', `cluster ${input.name}: already exists`);
      }
      await audit.record({
        action: 'cluster.add',
        actor,
        cluster: input.name,
        outcome: 'ok',
        detail: `environment ${input.environment}, token expires in ${Math.round(ttlMs / 1000)}s`,
      });
      logger.info({ cluster: input.name, environment: input.environment }, 'cluster added');
      options.onAdded?.(inserted);
      return { name: input.name, token, joinCommand: joinCommandFor(token) };
    },

    async list() {
      return db.select().from(clusters).orderBy(clusters.name);
    },

    async remove(name, actor) {
      const cluster = await get(name);
      if (!cluster) {
        await audit.record({
          action: 'cluster.remove',
          actor,
          cluster: name,
          outcome: 'refused',
          detail: 'not found',
        });
        throw new FlotillaError('not-found', `cluster ${name}: not found`);
      }
      const creds = await db
        .update(agentCredentials)
        .set({ revokedAt: new Date() })
        .where(and(eq(agentCredentials.cluster, name), isNull(agentCredentials.revokedAt)))
        .returning({ natsUser: agentCredentials.natsUser });
      let accountJwt: string | undefined;
      for (const c of creds)
        accountJwt = await revokeNatsUser(options.nats.dataDir, options.nats.identity, c.natsUser);
      await db.transaction(async (tx) => {
        await tx.delete(bootstrapTokens).where(eq(bootstrapTokens.cluster, name));
        await tx.delete(clusterStatus).where(eq(clusterStatus.cluster, name));
        await tx.delete(resourceStatus).where(eq(resourceStatus.cluster, name));
        await tx.delete(statusReports).where(eq(statusReports.cluster, name));
        await tx.delete(pendingSyncs).where(eq(pendingSyncs.cluster, name));
        // Its signed bundles go too: a cluster added again under this name starts afresh.
        await tx.delete(bundles).where(eq(bundles.cluster, name));
        await tx.delete(renderState).where(eq(renderState.scope, `cluster:${name}`));
        // Open drift of a removed cluster is closed; its history stays.
        await tx
          .update(drift)
          .set({ clearedAt: new Date() })
          .where(and(eq(drift.cluster, name), isNull(drift.clearedAt)));
        await tx.delete(clusters).where(eq(clusters.name, name));
      });
      options.onRemoved?.(name);
      let detail = `revoked ${creds.length} agent credential(s)`;
      try {
        await options.nats.forget?.(name);
      } catch (err) {
        detail += `; its bundles could not be purged from NATS: ${String(err)}`;
        logger.warn({ cluster: name, err: String(err) }, 'nats: bundles of a removed cluster not purged');
      }
      if (accountJwt) {
        try {
          await options.nats.updateAccount(accountJwt);
        } catch (err) {
          detail += `; NATS revocation not yet pushed: ${String(err)}`;
          logger.warn(
            { cluster: name, err: String(err) },
            'nats revocation not pushed; it is pushed when NATS is back (reconnect) or at next start',
          );
        }
      }
      await audit.record({ action: 'cluster.remove', actor, cluster: name, outcome: 'ok', detail });
      logger.info({ cluster: name }, 'cluster removed');
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
      const cluster = await get(claimed.cluster);
      if (!cluster) return refuse(claimed.cluster, 'cluster no longer exists');
      // One agent per cluster: a join (again) replaces whatever agent held the cluster before.
      await revokeCredentials(eq(agentCredentials.cluster, cluster.name), cluster.name);
      const natsUser: AgentNatsUser = await mintAgentUser(options.nats.identity, cluster.name);
      const agentCredential = newSecret('flt_agent');
      const credentialExpiresAt = credentialExpiry();
      await db.insert(agentCredentials).values({
        credentialHash: hashSecret(agentCredential),
        cluster: cluster.name,
        agentPublicKey,
        natsUser: natsUser.publicKey,
        expiresAt: credentialExpiresAt,
      });
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
        agentCredential,
        credentialExpiresAt,
        nats: natsCredentials(natsUser),
        hubKeys: publicHubKeys(options.signingKeys()),
      };
    },

    async authenticate(credential) {
      const row = await liveCredentials.get(hashSecret(credential));
      if (row?.supersedes != null) {
        // First use of a rotated credential: the one it replaces, and its NATS user, stop now.
        await revokeCredentials(eq(agentCredentials.id, row.supersedes), row.cluster, row.natsUser);
        await db.update(agentCredentials).set({ supersedes: null }).where(eq(agentCredentials.id, row.id));
        logger.info({ cluster: row.cluster }, 'rotated agent credential in use; the previous one is revoked');
      }
      return row?.cluster;
    },

    async rotateCredential(credential, peer) {
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
      await revokeCredentials(eq(agentCredentials.supersedes, row.id), row.cluster);
      const natsUser = await mintAgentUser(options.nats.identity, row.cluster);
      const agentCredential = newSecret('flt_agent');
      const expiresAt = credentialExpiry();
      await db.insert(agentCredentials).values({
        credentialHash: hashSecret(agentCredential),
        cluster: row.cluster,
        agentPublicKey: row.agentPublicKey,
        natsUser: natsUser.publicKey,
        expiresAt,
        supersedes: row.id,
      });
      await audit.record({
        action: 'agent.rotate-credential',
        actor: `agent@${peer}`,
        cluster: row.cluster,
        outcome: 'ok',
        detail: `expires ${expiresAt.toISOString()}`,
      });
      logger.info({ cluster: row.cluster, expiresAt }, 'agent credential rotated');
      return { cluster: row.cluster, agentCredential, expiresAt, nats: natsCredentials(natsUser) };
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

/** An audit line for a label change, by key: `gpu=true (was false); -region (was eu); +tier=prod`. */
function labelChangeText(before: Record<string, string>, after: Record<string, string>): string {
  const parts: string[] = [];
  for (const k of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    if (!Object.hasOwn(before, k)) parts.push(`+${k}=${after[k]}`);
    else if (!Object.hasOwn(after, k)) parts.push(`-${k} (was ${before[k]})`);
    else if (before[k] !== after[k]) parts.push(`${k}=${after[k]} (was ${before[k]})`);
  }
  return parts.length > 0 ? parts.join('; ') : 'no change';
}
