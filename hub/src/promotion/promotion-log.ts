import { and, desc, eq } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { promotionRequests, promotions } from '../db/schema.js';

/** One promotion or rollback the hub made, as `flotilla promote --history` lists it. */
export interface PromotionRecord {
  id: number;
  at: string;
  /** Who asked for it: the authenticated identity (`admin`, `token:NAME`). */
  actor: string;
  /** Into an environment that requires approval: the other identity that approved it. */
  approvedBy: string | null;
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
  'id' | 'at' | 'fastForward' | 'previousHead' | 'undoes' | 'approvedBy'
> &
  Partial<Pick<PromotionRecord, 'fastForward' | 'previousHead' | 'undoes' | 'approvedBy'>>;

/** A promotion asked for and waiting for approval by another identity (`promote --history`: pending). */
export interface PendingPromotion {
  id: number;
  from: string;
  to: string;
  /** The FROM revision verified when it was asked for: what an approval promotes. */
  revision: string;
  requestedBy: string;
  requestedAt: string;
}

/** The promotion history: who moved what, from which revision, as which commit. */
export interface PromotionLog {
  record(entry: NewPromotionRecord): Promise<PromotionRecord>;
  /** Newest first. */
  list(options?: { limit?: number }): Promise<PromotionRecord[]>;
  /** Records a promotion waiting for approval; supersedes the one that waited for FROM → TO before. */
  request(entry: {
    from: string;
    to: string;
    revision: string;
    requestedBy: string;
  }): Promise<PendingPromotion>;
  /** The promotions waiting for approval, oldest first; with FROM and TO, that one. */
  pending(only?: { from: string; to: string }): Promise<PendingPromotion[]>;
  /** Marks a waiting promotion approved by `by`, as the promotion `promotionId`. */
  approved(id: number, by: string, promotionId: number | null): Promise<void>;
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
    approvedBy: r.approvedBy,
  });
  const toPending = (r: typeof promotionRequests.$inferSelect): PendingPromotion => ({
    id: r.id,
    from: r.fromEnv,
    to: r.toEnv,
    revision: r.revision,
    requestedBy: r.requestedBy,
    requestedAt: r.requestedAt.toISOString(),
  });
  const waiting = (only?: { from: string; to: string }) =>
    and(
      eq(promotionRequests.state, 'pending'),
      only ? eq(promotionRequests.fromEnv, only.from) : undefined,
      only ? eq(promotionRequests.toEnv, only.to) : undefined,
    );
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
          approvedBy: entry.approvedBy ?? null,
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
    request: (entry) =>
      db.transaction(async (tx) => {
        await tx
          .update(promotionRequests)
          .set({ state: 'superseded', decidedBy: entry.requestedBy, decidedAt: new Date() })
          .where(waiting(entry));
        const [row] = await tx
          .insert(promotionRequests)
          .values({
            fromEnv: entry.from,
            toEnv: entry.to,
            revision: entry.revision,
            requestedBy: entry.requestedBy,
          })
          .returning();
        return toPending(row!);
      }),
    async pending(only) {
      const rows = await db
        .select()
        .from(promotionRequests)
        .where(waiting(only))
        .orderBy(promotionRequests.id);
      return rows.map(toPending);
    },
    async approved(id, by, promotionId) {
      await db
        .update(promotionRequests)
        .set({ state: 'approved', decidedBy: by, decidedAt: new Date(), promotionId })
        .where(eq(promotionRequests.id, id));
    },
  };
}
