import { desc } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { promotions } from '../db/schema.js';

/** One promotion or rollback the hub made, as `flotilla promote --history` lists it. */
export interface PromotionRecord {
  at: string;
  who: string;
  from: string;
  to: string;
  fromRevision: string;
  commit: string;
  kind: 'promote' | 'rollback';
}

/** The promotion history: who moved what, from which revision, as which commit. */
export interface PromotionLog {
  record(entry: Omit<PromotionRecord, 'at'>): Promise<PromotionRecord>;
  /** Newest first. */
  list(options?: { limit?: number }): Promise<PromotionRecord[]>;
}

export function createPromotionLog(db: Db): PromotionLog {
  const toRecord = (r: typeof promotions.$inferSelect): PromotionRecord => ({
    at: r.at.toISOString(),
    who: r.who,
    from: r.fromEnv,
    to: r.toEnv,
    fromRevision: r.fromRevision,
    commit: r.commit,
    kind: r.kind,
  });
  return {
    async record(entry) {
      const [row] = await db
        .insert(promotions)
        .values({
          who: entry.who,
          fromEnv: entry.from,
          toEnv: entry.to,
          fromRevision: entry.fromRevision,
          commit: entry.commit,
          kind: entry.kind,
        })
        .returning();
      return toRecord(row!);
    },
    async list(options = {}) {
      const rows = await db
        .select()
        .from(promotions)
        .orderBy(desc(promotions.id))
        .limit(options.limit ?? 200);
      return rows.map(toRecord);
    },
  };
}
