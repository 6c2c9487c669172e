import { desc } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { promotions } from '../db/schema.js';

/** One promotion or rollback the hub made, as `flotilla promote --history` lists it. */
export interface PromotionRecord {
  id: number;
  at: string;
  /** Who asked for it (the admin API's actor). */
  actor: string;
  from: string;
  to: string;
  /** The FROM revision promoted; for a rollback, TO's head it reverted. */
  fromRevision: string;
  /** TO's branch head afterwards. */
  commit: string;
  kind: 'promote' | 'rollback';
  fastForward: boolean;
  /** TO's branch head before; null when the promotion created the branch. */
  previousHead: string | null;
  /** For a rollback: the id of the promotion it undid. */
  undoes: number | null;
}

export type NewPromotionRecord = Omit<
  PromotionRecord,
  'id' | 'at' | 'fastForward' | 'previousHead' | 'undoes'
> &
  Partial<Pick<PromotionRecord, 'fastForward' | 'previousHead' | 'undoes'>>;

/** The promotion history: who moved what, from which revision, as which commit. */
export interface PromotionLog {
  record(entry: NewPromotionRecord): Promise<PromotionRecord>;
  /** Newest first. */
  list(options?: { limit?: number }): Promise<PromotionRecord[]>;
}

export function createPromotionLog(db: Db): PromotionLog {
  const toRecord = (r: typeof promotions.$inferSelect): PromotionRecord => ({
    id: r.id,
    at: r.at.toISOString(),
    actor: r.who,
    from: r.fromEnv,
    to: r.toEnv,
    fromRevision: r.fromRevision,
    commit: r.commit,
    kind: r.kind,
    fastForward: r.fastForward,
    previousHead: r.previousHead,
    undoes: r.undoes,
  });
  return {
    async record(entry) {
      const [row] = await db
        .insert(promotions)
        .values({
          who: entry.actor,
          fromEnv: entry.from,
          toEnv: entry.to,
          fromRevision: entry.fromRevision,
          commit: entry.commit,
          kind: entry.kind,
          fastForward: entry.fastForward ?? false,
          previousHead: entry.previousHead ?? null,
          undoes: entry.undoes ?? null,
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
