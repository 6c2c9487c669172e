import { assertClusterName, FlotillaError, InvalidError, type Logger } from '@flotilla/shared';
import { and, eq, isNull } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import {
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
import type { AgentCredentials } from './agent-credentials.js';
import type { JoinTokens } from './join-tokens.js';
import type { NatsRevocation } from './nats-revocation.js';
import { assertLabels } from './selector.js';
import { type AddedCluster, type Cluster, DEFAULT_TOKEN_TTL_MS, type LabelChange } from './types.js';

/** The registry of clusters: add (with its first join token), list, label, move, remove. */
export interface ClusterRegistry {
  add(
    input: { name: string; environment: string; labels?: Record<string, string>; ttlMs?: number },
    actor: string,
  ): Promise<AddedCluster>;
  list(): Promise<Cluster[]>;
  get(name: string): Promise<Cluster | undefined>;
  label(name: string, change: LabelChange, actor: string): Promise<Cluster>;
  move(name: string, environment: string, actor: string): Promise<Cluster>;
  remove(name: string, actor: string): Promise<void>;
}

export interface ClusterRegistryOptions {
  db: Db;
  audit: AuditLog;
  logger: Logger;
  joinTokens: Pick<JoinTokens, 'create' | 'joinCommand'>;
  credentials: Pick<AgentCredentials, 'revokeAll'>;
  revocation: NatsRevocation;
  /** Removes a cluster's bundles from the stream (a removed cluster's desired state, Secrets included, must not linger). */
  forgetBundles?(cluster: string): Promise<void>;
  onAdded?: (cluster: Cluster) => void;
  environments?: () => string[] | undefined;
  onChanged?: (cluster: Cluster) => void;
  onRemoved?: (cluster: string) => void;
}

export function createClusterRegistry(options: ClusterRegistryOptions): ClusterRegistry {
  const { db, audit, logger } = options;

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

    async add(input, actor) {
      assertClusterName(input.name);
      assertClusterName(input.environment);
      const labels = input.labels ?? {};
      assertLabels(labels);
      const ttlMs = input.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
      if (!(ttlMs > 0)) throw new InvalidError('ttl', 'must be positive');
      const { token, row: tokenRow } = options.joinTokens.create(input.name, ttlMs);
      const inserted = await db.transaction(async (tx) => {
        const rows = await tx
          .insert(clusters)
          .values({ name: input.name, environment: input.environment, labels })
          .onConflictDoNothing()
          .returning();
        if (rows.length === 0) return undefined;
        await tx.insert(bootstrapTokens).values(tokenRow);
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
      return { name: input.name, token, joinCommand: options.joinTokens.joinCommand(token) };
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
      const natsUsers = await options.credentials.revokeAll(name);
      const accountJwt = await options.revocation.revoke(natsUsers);
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
      let detail = `revoked ${natsUsers.length} agent credential(s)`;
      try {
        await options.forgetBundles?.(name);
      } catch (err) {
        detail += `; its bundles could not be purged from NATS: ${String(err)}`;
        logger.warn({ cluster: name, err: String(err) }, 'nats: bundles of a removed cluster not purged');
      }
      if (accountJwt) {
        const err = await options.revocation.push(accountJwt, name);
        if (err !== undefined) detail += `; NATS revocation not yet pushed: ${String(err)}`;
      }
      await audit.record({ action: 'cluster.remove', actor, cluster: name, outcome: 'ok', detail });
      logger.info({ cluster: name }, 'cluster removed');
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
