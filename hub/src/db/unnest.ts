import { getTableColumns, getTableName, type SQL, sql } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';

/**
 * A multi-row INSERT that passes one array parameter per column, spread into rows by
 * `unnest`, instead of one parameter per value: for batches of thousands of rows (the bundles
 * of a publish pass) drizzle spent more time building a VALUES list of thousands of parameters
 * (and PostgreSQL parsing it) than PostgreSQL spent storing the rows. The values go through each column's own
 * driver mapping (dates, JSON), as drizzle's insert does. Every row must set the same
 * `keys` (property names of the table's columns); append ON CONFLICT or RETURNING as needed.
 */
export function unnestInsert<T extends PgTable>(
  table: T,
  keys: ReadonlyArray<keyof T['$inferInsert'] & string>,
  rows: ReadonlyArray<Partial<T['$inferInsert']>>,
): SQL {
  const columns = getTableColumns(table);
  const arrays = keys.map((key) => {
    const column = columns[key];
    if (!column) throw new Error(`table ${getTableName(table)}: no column ${key}`);
    const values = rows.map((row) => {
      const value = (row as Record<string, unknown>)[key];
      return value == null ? null : column.mapToDriverValue(value);
    });
    return sql`${sql.param(values)}::${sql.raw(column.getSQLType())}[]`;
  });
  return sql`insert into ${table} (${sql.join(
    keys.map((key) => sql.identifier(columns[key]!.name)),
    sql`, `,
  )}) select * from unnest(${sql.join(arrays, sql`, `)})`;
}
