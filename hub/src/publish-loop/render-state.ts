import { eq, sql } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { renderState } from '../db/schema.js';

/** Scopes of render state: flotilla.yaml and the source, an environment, or one cluster. */
export const scopes = {
  config: 'config',
  env: (name: string) => `env:${name}`,
  cluster: (name: string) => `cluster:${name}`,
} as const;

export type RenderOutcome = { revision: string } | { error: string };

/**
 * Records many scopes' outcomes in one statement. A failure keeps the scope's last good
 * revision; a success clears its error.
 */
export async function recordRenders(db: Db, outcomes: ReadonlyMap<string, RenderOutcome>): Promise<void> {
  if (outcomes.size === 0) return;
  const now = new Date();
  const rows = [...outcomes].map(([scope, outcome]) =>
    'revision' in outcome
      ? { scope, lastGoodRevision: outcome.revision, lastError: null, errorAt: null, updatedAt: now }
      : { scope, lastGoodRevision: null, lastError: outcome.error, errorAt: now, updatedAt: now },
  );
  // Large fleets: keep each statement well under PostgreSQL's 65,535 bind parameters.
  for (let i = 0; i < rows.length; i += 2000)
    await db
      .insert(renderState)
      .values(rows.slice(i, i + 2000))
      .onConflictDoUpdate({
        target: renderState.scope,
        set: {
          lastGoodRevision: sql`coalesce(excluded.last_good_revision, ${renderState.lastGoodRevision})`,
          lastError: sql`excluded.last_error`,
          errorAt: sql`excluded.error_at`,
          updatedAt: sql`excluded.updated_at`,
        },
      });
}

/** Every scope's current outcome, to write only what a pass changed. */
export async function renderStates(db: Db): Promise<Map<string, RenderOutcome | undefined>> {
  const rows = await db.select().from(renderState);
  return new Map(
    rows.map((r) => [
      r.scope,
      r.lastError
        ? { error: r.lastError }
        : r.lastGoodRevision
          ? { revision: r.lastGoodRevision }
          : undefined,
    ]),
  );
}

export async function renderErrorOf(db: Db, scope: string): Promise<string | null> {
  const [row] = await db.select().from(renderState).where(eq(renderState.scope, scope));
  return row?.lastError ?? null;
}
