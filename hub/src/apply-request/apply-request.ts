import { FlotillaError } from '@flotilla/shared';
import { and, desc, eq, isNull } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import { bundles, clusters, pendingSyncs } from '../db/schema.js';

/** One manual sync asked for: delivered now on the cluster's stream, or on its next connect. */
export interface ApplyRequestOutcome {
  cluster: string;
  generation: number;
  delivered: boolean;
}

/**
 * Requests to apply a held bundle. Under the `sync: manual` policy an agent holds each new
 * bundle until asked (`flotilla sync`); this records the ask and delivers it on the cluster's
 * stream, now or on its next connect.
 */
export interface ApplyRequests {
  request(
    target: { cluster: string } | { environment: string },
    actor: string,
  ): Promise<ApplyRequestOutcome[]>;
  /** Sends what is pending for a cluster that just connected. */
  deliverPending(cluster: string): Promise<void>;
}

export interface ApplyRequestsOptions {
  db: Db;
  audit: AuditLog;
  send(cluster: string, generation: number): boolean;
}

export function createApplyRequests(options: ApplyRequestsOptions): ApplyRequests {
  const { db, audit } = options;
  const markSent = (cluster: string) =>
    db.update(pendingSyncs).set({ sentAt: new Date() }).where(eq(pendingSyncs.cluster, cluster));
  return {
    async request(target, actor) {
      const names =
        'cluster' in target
          ? (await db.select().from(clusters).where(eq(clusters.name, target.cluster))).map((c) => c.name)
          : (await db.select().from(clusters).where(eq(clusters.environment, target.environment))).map(
              (c) => c.name,
            );
      if (names.length === 0) {
        const what = 'cluster' in target ? `cluster ${target.cluster}` : `environment ${target.environment}`;
        throw new FlotillaError('not-found', `${what}: no such cluster`);
      }
      const out: ApplyRequestOutcome[] = [];
      for (const cluster of names) {
        const [latest] = await db
          .select({ generation: bundles.generation })
          .from(bundles)
          .where(eq(bundles.cluster, cluster))
          .orderBy(desc(bundles.generation))
          .limit(1);
        if (!latest) {
          out.push({ cluster, generation: 0, delivered: false });
          continue;
        }
        const values = { cluster, generation: latest.generation, requestedAt: new Date(), sentAt: null };
        await db
          .insert(pendingSyncs)
          .values(values)
          .onConflictDoUpdate({ target: pendingSyncs.cluster, set: values });
        const delivered = options.send(cluster, latest.generation);
        if (delivered) await markSent(cluster);
        await audit.record({
          action: 'sync',
          actor,
          cluster,
          outcome: 'ok',
          detail: `generation ${latest.generation}${delivered ? '' : ' (pending until the agent connects)'}`,
        });
        out.push({ cluster, generation: latest.generation, delivered });
      }
      return out;
    },
    async deliverPending(cluster) {
      const [pending] = await db
        .select()
        .from(pendingSyncs)
        .where(and(eq(pendingSyncs.cluster, cluster), isNull(pendingSyncs.sentAt)));
      if (pending && options.send(cluster, pending.generation)) await markSent(cluster);
    },
  };
}
