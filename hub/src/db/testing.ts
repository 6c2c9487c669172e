import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { type PostgresServer, startPostgresServer } from '@flotilla/e2e/harness';
import pg from 'pg';
import { type Database, openDatabase } from './database.js';

export type TestDatabaseKind = 'pglite' | 'postgres';
export const TEST_DATABASE_KINDS: TestDatabaseKind[] = ['pglite', 'postgres'];

/**
 * The test process's own PostgreSQL server, started on a free port the first time a test
 * asks for one, so tests never depend on a server already listening on the machine. One per
 * test process (each spec file is one), not per test: initdb and start take about a second.
 */
let server: Promise<PostgresServer> | undefined;

// Importing this module is done by spec files only: the hook belongs to the file's root test
// and stops the server once every test of the file has run.
after(async () => {
  if (server) await (await server).destroy();
});

/** The admin URL of this process's private PostgreSQL server, starting it on first use. */
async function adminUrl(): Promise<string> {
  server ??= startPostgresServer();
  return (await server).url;
}

async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: await adminUrl() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** The URL of a fresh PostgreSQL database for a spawned hub, and how to drop it. */
export async function createTestPostgresUrl(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `flotilla_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(await adminUrl());
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * A migrated, empty database of the given kind. For PostgreSQL a new database with a
 * random name is created in this process's private server (and dropped on close).
 */
export async function openTestDatabase(kind: TestDatabaseKind): Promise<Database> {
  if (kind === 'pglite') return openDatabase();
  const { url, drop } = await createTestPostgresUrl();
  const database = await openDatabase({ url });
  return {
    ...database,
    async close() {
      await database.close();
      await drop();
    },
  };
}
