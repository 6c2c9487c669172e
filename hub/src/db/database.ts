import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { FlotillaError, redactUrl } from '@flotilla/shared';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import * as schema from './schema.js';

/** The hub's database, whichever driver is behind it: queries are written once, against pg-core. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DatabaseOptions {
  /** `postgres://…` for PostgreSQL; otherwise PGlite is used. */
  url?: string;
  /** PGlite's data directory; in memory when unset (tests). */
  pgliteDir?: string;
}

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** The PostgreSQL URL (for a connection of one's own, as leader election needs). */
  url?: string;
  close(): Promise<void>;
}

/** The committed drizzle-kit migrations, applied at every start. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle', import.meta.url));

/**
 * Opens the hub database and brings its schema up to date with the committed migrations.
 * PGlite in the data dir is the default so a hub runs with no server; PostgreSQL is for
 * scale and shared by hub replicas.
 */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  if (options.url && /^postgres(ql)?:\/\//.test(options.url)) {
    const pool = new pg.Pool({ connectionString: options.url, max: 10 });
    pool.on('error', () => {
      // An idle client lost its connection; the pool replaces it on next use.
    });
    // A checked-out client whose session ends (a transaction held across a render, the server
    // restarting) fails its next query; without a listener its error would end the process.
    pool.on('connect', (client) => client.on('error', () => {}));
    const db = drizzlePg(pool, { schema }) as unknown as Db;
    try {
      await migratePg(db as never, { migrationsFolder: MIGRATIONS_DIR });
    } catch (err) {
      await pool.end().catch(() => {});
      throw new FlotillaError('unavailable', `database ${redactUrl(options.url)}: ${errText(err)}`, {
        cause: err,
      });
    }
    return { db, kind: 'postgres', url: options.url, close: () => pool.end() };
  }
  if (options.pgliteDir) mkdirSync(options.pgliteDir, { recursive: true });
  const client = new PGlite(options.pgliteDir);
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  await migratePglite(db as never, { migrationsFolder: MIGRATIONS_DIR });
  return { db, kind: 'pglite', close: () => client.close() };
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
