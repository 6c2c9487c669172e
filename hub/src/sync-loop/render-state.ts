import { eq } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { renderState } from '../db/schema.js';

/** Scopes of render state: flotilla.yaml and the source, an environment, or one cluster. */
export const scopes = {
  config: 'config',
  env: (name: string) => `env:${name}`,
  cluster: (name: string) => `cluster:${name}`,
} as const;

/** Records a good render (clears the error) or a failure (keeps the last good revision). */
export async function recordRender(
  db: Db,
  scope: string,
  outcome: { revision: string } | { error: string },
): Promise<void> {
  const now = new Date();
  const set =
    'revision' in outcome
      ? { lastGoodRevision: outcome.revision, lastError: null, errorAt: null, updatedAt: now }
      : { lastError: outcome.error, errorAt: now, updatedAt: now };
  await db
    .insert(renderState)
    .values({ scope, ...set })
    .onConflictDoUpdate({ target: renderState.scope, set });
}

export async function renderErrorOf(db: Db, scope: string): Promise<string | null> {
  const [row] = await db.select().from(renderState).where(eq(renderState.scope, scope));
  return row?.lastError ?? null;
}
