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

export function labelsText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
