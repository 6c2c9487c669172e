type Cell = string | number | boolean | null | undefined;

/** A cell as tables print it: `-` for nothing. */
function cellText(c: Cell): string {
  return c === null || c === undefined || c === '' ? '-' : String(c);
}

/** The column widths `table` aligns to: the widest cell of each column, header included. */
export function columnWidths(headers: string[], rows: Cell[][]): number[] {
  const cells = [headers, ...rows.map((r) => r.map(cellText))];
  return headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
}

/**
 * Rows aligned to given widths, one line each. A watch prints its later rows with the widths
 * of its first table, so that they line up under it (a longer cell pushes its line only).
 */
export function alignedRows(rows: Cell[][], widths: number[]): string {
  return rows
    .map((r) =>
      r
        .map(cellText)
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  '),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/** A plain text table: a header row and aligned columns, for humans (scripts use -o json). */
export function table(headers: string[], rows: Cell[][]): string {
  return alignedRows([headers, ...rows], columnWidths(headers, rows));
}

/** `3m ago` style ages for last-seen columns. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function labelsText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
