import { ErrorCode, FlotillaError } from '@flotilla/shared';
import { eq } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import { clusters, pauses } from '../db/schema.js';

/** What is paused: one cluster, or every cluster of an environment (also those added later). */
export type PauseTarget = { cluster: string } | { environment: string };

/** A pause as the CLI, API and fleet view show it. */
export interface Pause {
  scope: 'cluster' | 'environment';
  name: string;
  reason: string | null;
  by: string;
  at: string;
}

/**
 * `flotilla cluster pause|resume` and `flotilla env pause|resume`. A paused cluster keeps
 * enforcing and healing the bundle it has; the publish pass gives it no new one, and promotion
 * gates leave it out (saying so). Resuming lets the next pass catch it up.
 */
export interface Pauses {
  pause(target: PauseTarget, reason: string | null, actor: string): Promise<Pause>;
  /** `stillPaused`: the environment's pause that still holds a resumed cluster, if any. */
  resume(target: PauseTarget, actor: string): Promise<{ resumed: boolean; stillPaused: Pause | null }>;
  list(): Promise<Pause[]>;
  /** The pause in force for each paused cluster (its own first, else its environment's). */
  pausedClusters(members: ReadonlyArray<{ name: string; environment: string }>): Promise<Map<string, Pause>>;
}

export interface PausesOptions {
  db: Db;
  audit: AuditLog;
  /** Told after every pause or resume (a resume should publish what the cluster missed). */
  onChange?: (target: PauseTarget) => void;
}

const scopeOf = (t: PauseTarget) => ('cluster' in t ? `cluster:${t.cluster}` : `env:${t.environment}`);
const nameOf = (t: PauseTarget) => ('cluster' in t ? `cluster ${t.cluster}` : `environment ${t.environment}`);

export function toPause(row: typeof pauses.$inferSelect): Pause {
  const [kind, ...rest] = row.scope.split(':');
  return {
    scope: kind === 'env' ? 'environment' : 'cluster',
    name: rest.join(':'),
    reason: row.reason,
    by: row.actor,
    at: row.at.toISOString(),
  };
}

/** The pause that holds a cluster, given every pause row: its own, else its environment's. */
export function pauseOf(
  rows: ReadonlyMap<string, Pause>,
  cluster: { name: string; environment: string },
): Pause | undefined {
  return rows.get(`cluster:${cluster.name}`) ?? rows.get(`env:${cluster.environment}`);
}

export function createPauses(options: PausesOptions): Pauses {
  const { db, audit } = options;
  const exists = async (target: PauseTarget) => {
    const rows =
      'cluster' in target
        ? await db.select({ name: clusters.name }).from(clusters).where(eq(clusters.name, target.cluster))
        : await db
            .select({ name: clusters.name })
            .from(clusters)
            .where(eq(clusters.environment, target.environment))
            .limit(1);
    if (rows.length === 0)
      throw new FlotillaError(
        ErrorCode.NotFound,
        'cluster' in target
          ? `cluster ${target.cluster}: no such cluster`
          : `environment ${target.environment}: no cluster is registered in it`,
      );
  };
  const all = async () => new Map((await db.select().from(pauses)).map((r) => [r.scope, toPause(r)]));
  return {
    async pause(target, reason, actor) {
      await exists(target);
      if (reason !== null && reason.length > 500)
        throw new FlotillaError(ErrorCode.Invalid, 'reason: at most 500 characters');
      const values = { scope: scopeOf(target), reason, actor, at: new Date() };
      await db.insert(pauses).values(values).onConflictDoUpdate({ target: pauses.scope, set: values });
      await audit.record({
        action: 'pause',
        actor,
        cluster: 'cluster' in target ? target.cluster : null,
        outcome: 'ok',
        detail: `${nameOf(target)}${reason ? `: ${reason}` : ''}`,
      });
      options.onChange?.(target);
      return toPause({ ...values });
    },
    async resume(target, actor) {
      await exists(target);
      const removed = await db
        .delete(pauses)
        .where(eq(pauses.scope, scopeOf(target)))
        .returning();
      await audit.record({
        action: 'resume',
        actor,
        cluster: 'cluster' in target ? target.cluster : null,
        outcome: 'ok',
        detail: `${nameOf(target)}${removed.length ? '' : ' (was not paused)'}`,
      });
      options.onChange?.(target);
      let stillPaused: Pause | null = null;
      if ('cluster' in target) {
        const [row] = await db.select().from(clusters).where(eq(clusters.name, target.cluster));
        if (row) stillPaused = (await all()).get(`env:${row.environment}`) ?? null;
      }
      return { resumed: removed.length > 0, stillPaused };
    },
    async list() {
      return [...(await all()).values()].sort(
        (a, b) => a.scope.localeCompare(b.scope) || a.name.localeCompare(b.name),
      );
    },
    async pausedClusters(members) {
      const rows = await all();
      const out = new Map<string, Pause>();
      for (const c of members) {
        const p = pauseOf(rows, c);
        if (p) out.set(c.name, p);
      }
      return out;
    },
  };
}

/** How a pause reads in messages: `paused by alice (rebuilding the site)`. */
export function pauseText(p: Pause): string {
  return `paused${p.scope === 'environment' ? ` with environment ${p.name}` : ''} by ${p.by}${p.reason ? ` (${p.reason})` : ''}`;
}
