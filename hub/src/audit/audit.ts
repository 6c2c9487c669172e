import { desc, eq } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { auditLog } from '../db/schema.js';

/** One audited event: who did what to which cluster, and whether it was allowed. */
export interface AuditEntry {
  at: string;
  action: string;
  actor: string;
  cluster: string | null;
  outcome: 'ok' | 'refused' | 'failed';
  detail: string | null;
}

/** The audit log: registrations, removals, refused attempts, syncs. Never holds a secret. */
export interface AuditLog {
  record(entry: Omit<AuditEntry, 'at'>): Promise<void>;
  list(options?: { cluster?: string; limit?: number }): Promise<AuditEntry[]>;
}

export function createAuditLog(db: Db): AuditLog {
  return {
    async record(entry) {
      await db.insert(auditLog).values({
        action: entry.action,
        actor: entry.actor,
        cluster: entry.cluster,
        outcome: entry.outcome,
        detail: entry.detail,
      });
    },
    async list(options = {}) {
      const rows = await db
        .select()
        .from(auditLog)
        .where(options.cluster ? eq(auditLog.cluster, options.cluster) : undefined)
        .orderBy(desc(auditLog.id))
        .limit(options.limit ?? 500);
      return rows.map((r) => ({
        at: r.at.toISOString(),
        action: r.action,
        actor: r.actor,
        cluster: r.cluster,
        outcome: r.outcome as AuditEntry['outcome'],
        detail: r.detail,
      }));
    },
  };
}
