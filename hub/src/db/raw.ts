import type { PGlite, Transaction } from '@electric-sql/pglite';
import { getTableColumns, getTableName } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import pg from 'pg';
import type { Db } from './database.js';

/**
 * One statement of a raw transaction: constant `text` under a `name`, so PostgreSQL parses and
 * plans it once per connection (PGlite runs it unnamed). Rows come back as the driver gives
 * them: snake_case columns, a bigint as a string on PostgreSQL and a number on PGlite.
 */
export interface RawStatement {
  name: string;
  text: string;
}

export type RawQuery = <R = Record<string, unknown>>(
  statement: RawStatement,
  values: unknown[],
) => Promise<R[]>;

/**
 * A transaction on the driver under `db`, bypassing drizzle's query building: for the status
 * ingest's few hot statements, run thousands of times a minute with the same text, drizzle
 * cost more of the hub's CPU than the statements cost PostgreSQL. Everything else goes through
 * drizzle.
 */
export async function rawTransaction<T>(db: Db, fn: (query: RawQuery) => Promise<T>): Promise<T> {
  const client = (db as unknown as { $client: pg.Pool | PGlite }).$client;
  if (client instanceof pg.Pool) {
    const connection = await client.connect();
    let broken: Error | undefined;
    try {
      await connection.query('begin');
      const result = await fn(
        async (statement, values) => (await connection.query({ ...statement, values })).rows,
      );
      await connection.query('commit');
      return result;
    } catch (err) {
      // A connection that cannot even roll back is dropped from the pool, not reused.
      await connection.query('rollback').catch((e: Error) => {
        broken = e;
      });
      throw err;
    } finally {
      connection.release(broken);
    }
  }
  return client.transaction((tx: Transaction) =>
    fn(async (statement, values) => (await tx.query(statement.text, values)).rows as never),
  );
}

/**
 * `json_to_recordset($n::json) as r("key" type, …)` over the given columns of a table, the
 * record's fields named by their drizzle property names: rows go to PostgreSQL as one JSON
 * text (one `JSON.stringify`, no array literal to escape per value) and come out typed by the
 * column's own SQL type. Select `r."key"` from it.
 */
export function jsonRecordset<T extends PgTable>(
  table: T,
  keys: ReadonlyArray<keyof T['$inferSelect'] & string>,
  param: number,
): string {
  const columns = getTableColumns(table);
  const fields = keys.map((key) => {
    const column = columns[key];
    if (!column) throw new Error(`table ${getTableName(table)}: no column ${key}`);
    // A serial column is an integer to read into.
    const type = column
      .getSQLType()
      .replace(/^serial$/, 'integer')
      .replace(/^bigserial$/, 'bigint');
    return `"${key}" ${type}`;
  });
  return `json_to_recordset($${param}::json) as r(${fields.join(', ')})`;
}

/** The SQL name of a table's column, quoted. */
export function columnName<T extends PgTable>(table: T, key: keyof T['$inferSelect'] & string): string {
  const column = getTableColumns(table)[key];
  if (!column) throw new Error(`table ${getTableName(table)}: no column ${key}`);
  return `"${column.name}"`;
}

const columnsOf = new WeakMap<PgTable, Array<[string, PgColumn]>>();

/**
 * A row as the driver returned it (snake_case, bigint as a string on PostgreSQL) as drizzle
 * would have: property names, numbers for integer and bigint columns, dates for timestamps.
 */
export function rowOf<T extends PgTable>(table: T, raw: Record<string, unknown>): T['$inferSelect'] {
  let columns = columnsOf.get(table);
  if (!columns) {
    columns = Object.entries(getTableColumns(table));
    columnsOf.set(table, columns);
  }
  const row: Record<string, unknown> = {};
  for (const [key, column] of columns) {
    const value = raw[column.name];
    if (value == null) row[key] = value ?? null;
    else if (column.dataType === 'number') row[key] = Number(value);
    else if (column.dataType === 'date' && !(value instanceof Date)) row[key] = new Date(value as string);
    else row[key] = value;
  }
  return row as T['$inferSelect'];
}
