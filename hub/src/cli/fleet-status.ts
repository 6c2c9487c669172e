import { setTimeout as sleep } from 'node:timers/promises';
import type { FleetClusterStatus } from '../status/fleet-view.js';
import { ago } from '../util/ago.js';
import { alignedRows, columnWidths, table } from './format.js';
import type { CliIo } from './run.js';

/** The columns of `flotilla fleet status`. */
export const FLEET_STATUS_HEADERS = [
  'CLUSTER',
  'ENV',
  'REVISION',
  'GEN',
  'SYNC',
  'HEALTH',
  'DRIFTED',
  'CONNECTED',
  'LAST SEEN',
  'HOLD',
  'ERROR',
];

/** One cluster's row of `flotilla fleet status`. */
export function fleetStatusRow(c: FleetClusterStatus, now = Date.now()): Array<string | number | null> {
  return [
    c.name,
    c.environment,
    c.revision?.slice(0, 12) ?? null,
    c.generation,
    c.sync,
    c.health,
    c.drifted,
    c.connected ? 'yes' : 'no',
    c.reportedVia === 'import' && !c.connected
      ? `imported, reported ${ago(c.reportedAt, now)}`
      : ago(c.lastSeen, now),
    c.paused ? 'paused' : c.hold ? (c.pendingUntil ? `until ${c.pendingUntil}` : 'held') : null,
    c.error,
  ];
}

export function fleetStatusTable(clusters: FleetClusterStatus[]): string {
  return table(
    FLEET_STATUS_HEADERS,
    clusters.map((c) => fleetStatusRow(c)),
  );
}

/** Below the table: what the hub warns of, per cluster and object (e.g. a Secret in clear). */
export function fleetWarningsText(clusters: FleetClusterStatus[]): string {
  const lines = clusters.flatMap((c) => (c.warnings ?? []).map((w) => `warning: ${c.name}: ${w}`));
  return lines.length ? `\n${lines.join('\n')}\n` : '';
}

export interface FleetWatchOptions {
  /** One read of the fleet's status (the admin API's GET /api/v1/fleet/status). */
  poll(): Promise<FleetClusterStatus[]>;
  /** Time between two reads. */
  intervalMs: number;
  /** One JSON object a line per change instead of table rows. */
  json: boolean;
  io: CliIo;
  /** Ends the watch (Ctrl-C): the command then returns 0. */
  signal?: AbortSignal;
}

/**
 * What a cluster's row says, except how long ago it was last seen: that changes with every
 * heartbeat and would print every cluster again on every read.
 */
function changeKey(c: FleetClusterStatus): string {
  const { lastSeen: _lastSeen, ...rest } = c;
  return JSON.stringify(rest);
}

/**
 * `flotilla fleet status --watch`, like `kubectl get -w`: the whole table once, then a row
 * again for each cluster whose status changed (a new cluster, a new revision, generation,
 * sync, health, drift, connection or error), and a row saying `removed` for a cluster that
 * is gone. The hub's API has no change stream, so it reads the status every `intervalMs`.
 * With -o json, each change is one JSON object on its own line (a removal: `{name, removed}`).
 */
export async function watchFleetStatus({
  poll,
  intervalMs,
  json,
  io,
  signal,
}: FleetWatchOptions): Promise<number> {
  const seen = new Map<string, string>();
  let widths: number[] | undefined;
  while (!signal?.aborted) {
    const clusters = await poll();
    const changed = clusters.filter((c) => seen.get(c.name) !== changeKey(c));
    const names = new Set(clusters.map((c) => c.name));
    const removed = [...seen.keys()].filter((n) => !names.has(n));
    for (const c of changed) seen.set(c.name, changeKey(c));
    for (const n of removed) seen.delete(n);
    if (json) {
      for (const c of changed) io.out(`${JSON.stringify(c)}\n`);
      for (const n of removed) io.out(`${JSON.stringify({ name: n, removed: true })}\n`);
    } else {
      const rows = [
        ...changed.map((c) => fleetStatusRow(c)),
        ...removed.map((n) => [n, ...FLEET_STATUS_HEADERS.slice(1, -1).map(() => null), 'removed']),
      ];
      if (!widths) {
        widths = columnWidths(FLEET_STATUS_HEADERS, rows);
        io.out(alignedRows([FLEET_STATUS_HEADERS, ...rows], widths));
      } else if (rows.length > 0) io.out(alignedRows(rows, widths));
    }
    try {
      await sleep(intervalMs, undefined, signal ? { signal } : {});
    } catch {
      break;
    }
  }
  return 0;
}
