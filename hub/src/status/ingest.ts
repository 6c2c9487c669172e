import { toJson } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { type ClusterStatus, type ReportStatusRequest, ReportStatusRequestSchema } from '@flotilla/proto';
import { HEALTH_NAMES, PHASE_NAMES, SYNC_NAMES } from '@flotilla/shared';
import { getTableName } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { Db } from '../db/database.js';
import { columnName, jsonRecordset, type RawStatement, rawTransaction, rowOf } from '../db/raw.js';
import { clusterStatus, drift, resourceStatus, statusReports } from '../db/schema.js';

/** How a report reached the hub: the live gRPC stream, or a file carried out of an air-gapped site. */
export type ReportVia = 'stream' | 'import';

/** Outcome of one report: stored now, or a duplicate of a stored one (same cluster and seq). */
export type IngestOutcome = { seq: number; stored: boolean };

/** Stores agent reports; the same code path serves the stream and air-gapped imports. */
export interface StatusIngest {
  /**
   * Stores one report and updates the cluster's current status, resources and drift, in one
   * transaction. Returns only after the report is durable, so the caller may then Ack it.
   * A report with a (cluster, seq) already stored is a duplicate: acknowledged, not applied.
   */
  ingest(cluster: string, report: ReportStatusRequest, via: ReportVia): Promise<IngestOutcome>;
  /**
   * Records that the cluster was heard from without a report (a stream opened). A report
   * ingested from a stream records it in the report's own transaction.
   */
  touch(cluster: string, at?: Date): Promise<void>;
}

export interface StatusIngestOptions {
  /** Reports stored in one transaction at most; default 500. */
  maxBatch?: number;
  /**
   * Transactions open at once, default 2: the next batch is prepared and waits for its rows
   * while the previous one writes and commits, instead of after it.
   */
  maxInFlight?: number;
  /**
   * Told when a batch's transaction failed and its reports are retried one by one (a report the
   * database refuses, a lost connection, a deadlock): the retries hide it from the callers.
   */
  onBatchFailed?: (err: unknown, reports: number) => void;
  /** Tests only: called in a batch's transaction once it holds its clusters' rows, before it writes. */
  onLocked?: (clusters: readonly string[]) => Promise<void> | void;
}

type ClusterStatusRow = typeof clusterStatus.$inferSelect;
type DriftRow = typeof drift.$inferSelect;

interface Pending {
  cluster: string;
  report: ReportStatusRequest;
  via: ReportVia;
  resolve(outcome: IngestOutcome): void;
  reject(err: unknown): void;
}

/**
 * Stores agent reports with group commit: reports that arrive while transactions are being
 * written wait and go together into the next one, a handful of statements for the whole
 * batch instead of several per report. Each caller is answered only once its batch is
 * committed, so an Ack still means durable. A batch that fails is retried report by report,
 * so one bad report never costs the others.
 *
 * Up to `maxInFlight` batches are in flight: the next one is built while the previous one
 * writes and commits. Each transaction first locks the cluster_status rows of all its
 * clusters, in one order (sorted by name) and in one statement, and touches a cluster's other
 * rows only under that lock; batches take that first step in the order they were formed. So
 * two batches sharing a cluster apply it in arrival order (the later one reads what the
 * earlier committed), batches sharing none run side by side, and none waits on another in a
 * cycle, here or on another hub replica.
 */
export function createStatusIngest(db: Db, options: StatusIngestOptions = {}): StatusIngest {
  const maxBatch = options.maxBatch ?? 500;
  const maxInFlight = options.maxInFlight ?? 2;
  const pending: Pending[] = [];
  let inFlight = 0;
  let scheduled = false;
  /** Settles once the newest batch started holds its rows (or failed): the next one's turn. */
  let turn: Promise<void> = Promise.resolve();

  const touch = async (cluster: string, at = new Date()) => {
    await db
      .insert(clusterStatus)
      .values({ cluster, lastSeen: at })
      .onConflictDoUpdate({ target: clusterStatus.cluster, set: { lastSeen: at } });
  };

  /** One batch in its own transaction, after the previous batch holds its rows. */
  const write = async (batch: Pending[]): Promise<IngestOutcome[]> => {
    const prepared = prepareBatch(batch);
    const previous = turn;
    let locked!: () => void;
    turn = new Promise((resolve) => {
      locked = resolve;
    });
    try {
      await previous;
      return await ingestBatch(db, prepared, async (clusters) => {
        locked();
        await options.onLocked?.(clusters);
      });
    } finally {
      locked();
    }
  };

  const run = async (batch: Pending[]) => {
    try {
      const outcomes = await write(batch);
      for (const [i, p] of batch.entries()) p.resolve(outcomes[i]!);
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      options.onBatchFailed?.(err, batch.length);
      for (const p of batch)
        await write([p]).then(
          ([outcome]) => p.resolve(outcome!),
          (e) => p.reject(e),
        );
    }
  };

  const pump = () => {
    while (pending.length > 0 && inFlight < maxInFlight) {
      inFlight++;
      void run(pending.splice(0, maxBatch)).finally(() => {
        inFlight--;
        pump();
      });
    }
  };

  return {
    touch,
    ingest(cluster, report, via) {
      return new Promise<IngestOutcome>((resolve, reject) => {
        pending.push({ cluster, report, via, resolve, reject });
        // Reports handed over in the same turn of the event loop start one batch together: the
        // streams whose data came in by one read of the sockets, or whose credential checks one
        // lookup answered, rather than a batch for the first of them and another for the rest.
        if (!scheduled) {
          scheduled = true;
          setImmediate(() => {
            scheduled = false;
            pump();
          });
        }
      });
    },
  };
}

/** What a batch changes for one cluster, applied in memory report by report, then written once. */
interface ClusterChanges {
  /** The cluster's row as the lock returned it, each applied report's fields set on it in order. */
  current: ClusterStatusRow;
  /** A report of the batch was applied: the row is written back. */
  changed: boolean;
  /** The resources of the newest applied status report, when there was one. */
  resources?: Array<typeof resourceStatus.$inferInsert>;
  /** Open drift by object and field: rows already stored (with an id) or opened in this batch. */
  open?: Map<string, DriftEvent>;
}

interface DriftEvent {
  id?: number;
  row: Omit<DriftRow, 'id' | 'clearedAt'>;
  clearedAt: Date | null;
  changed: boolean;
}

const driftKey = (d: { group: string; kind: string; namespace: string; name: string; field: string }) =>
  `${d.group}/${d.kind}/${d.namespace}/${d.name}#${d.field}`;

/** What a batch needs before its transaction: built while the previous batch is still writing. */
interface PreparedBatch {
  batch: Pending[];
  /** Index of the first report of each (cluster, seq) in the batch: the one stored. */
  first: Map<string, number>;
  /** Each report's (cluster, seq) key, as `first` and the stored rows name it. */
  keys: string[];
  /** The batch's reports for status_reports, as one JSON text. */
  reports: string;
  /** Every cluster of the batch, sorted: the order their rows are locked in. */
  clusters: string[];
  /** For each of `clusters`, whether it was heard from on a stream in this batch. */
  heard: boolean[];
}

function prepareBatch(batch: Pending[]): PreparedBatch {
  // The first of equal (cluster, seq) in a batch is the one stored; the others are duplicates.
  const first = new Map<string, number>();
  const rows: Array<typeof statusReports.$inferInsert> = [];
  const heard = new Map<string, boolean>();
  const keys: string[] = [];
  for (const [i, p] of batch.entries()) {
    // Every report on a stream, stored or a duplicate, says the cluster was heard from now.
    heard.set(p.cluster, heard.get(p.cluster) === true || p.via === 'stream');
    const key = `${p.cluster}\0${Number(p.report.seq)}`;
    keys.push(key);
    if (first.has(key)) continue;
    first.set(key, i);
    rows.push({
      cluster: p.cluster,
      seq: Number(p.report.seq),
      kind: p.report.body.case ?? 'empty',
      observedAt: observedAtOf(p.report),
      via: p.via,
      body: toJson(ReportStatusRequestSchema, p.report) as object,
    });
  }
  const clusters = [...heard.keys()].sort();
  return {
    batch,
    first,
    keys,
    reports: JSON.stringify(rows),
    clusters,
    heard: clusters.map((c) => heard.get(c)!),
  };
}

const REPORT_KEYS = ['cluster', 'seq', 'kind', 'observedAt', 'via', 'body'] as const;
const STATUS_KEYS = [
  'appliedGeneration',
  'revision',
  'bundleDigest',
  'phase',
  'health',
  'applyError',
  'pendingGeneration',
  'refusal',
  'refusedGeneration',
  'refusedAt',
  'reportedAt',
  'reportedVia',
  'lastSeq',
  'healthySince',
  'pendingReason',
  'pendingUntil',
] as const;
const RESOURCE_KEYS = [
  'cluster',
  'group',
  'version',
  'kind',
  'namespace',
  'name',
  'sync',
  'health',
  'healthReason',
  'error',
] as const;
const DRIFT_KEYS = [
  'cluster',
  'group',
  'version',
  'kind',
  'namespace',
  'name',
  'field',
  'desired',
  'live',
  'since',
  'clearedAt',
] as const;

/** Inserts rows given as one JSON array of objects keyed by property name. */
function jsonInsert<T extends PgTable>(
  table: T,
  keys: ReadonlyArray<keyof T['$inferSelect'] & string>,
): string {
  return `insert into "${getTableName(table)}" (${keys.map((k) => columnName(table, k)).join(', ')})
    select ${keys.map((k) => `r."${k}"`).join(', ')} from ${jsonRecordset(table, keys, 1)}`;
}

/**
 * The ingest's statements, each with constant text: PostgreSQL prepares each once per
 * connection, and nothing is built per batch but the JSON of its rows.
 */
const STATEMENTS = {
  /**
   * Locks the cluster_status row of every cluster of a batch (creating it if need be), in the
   * order given, setting lastSeen of those heard on a stream; returns their current rows.
   */
  lock: {
    name: 'flotilla_ingest_lock',
    text: `insert into cluster_status (cluster, last_seen)
      select u.cluster, case when u.heard then $3::timestamptz end
      from unnest($1::text[], $2::boolean[]) with ordinality as u(cluster, heard, n) order by u.n
      on conflict (cluster) do update set last_seen = coalesce(excluded.last_seen, cluster_status.last_seen)
      returning *`,
  },
  reports: {
    name: 'flotilla_ingest_reports',
    text: `${jsonInsert(statusReports, REPORT_KEYS)} on conflict do nothing returning cluster, seq`,
  },
  openDrift: {
    name: 'flotilla_ingest_open_drift',
    text: 'select * from drift where cluster = any($1::text[]) and cleared_at is null',
  },
  /** Every field of cluster_status but lastSeen, of rows the lock created or returned. */
  status: {
    name: 'flotilla_ingest_status',
    text: `update cluster_status c set ${STATUS_KEYS.map((k) => `${columnName(clusterStatus, k)} = r."${k}"`).join(', ')}
      from ${jsonRecordset(clusterStatus, ['cluster', ...STATUS_KEYS], 1)} where c.cluster = r."cluster"`,
  },
  deleteResources: {
    name: 'flotilla_ingest_delete_resources',
    text: 'delete from resource_status where cluster = any($1::text[])',
  },
  resources: { name: 'flotilla_ingest_resources', text: jsonInsert(resourceStatus, RESOURCE_KEYS) },
  drift: { name: 'flotilla_ingest_drift', text: jsonInsert(drift, DRIFT_KEYS) },
  updateDrift: {
    name: 'flotilla_ingest_update_drift',
    text: `update drift d set desired = r."desired", live = r."live", cleared_at = r."clearedAt"
      from ${jsonRecordset(drift, ['id', 'desired', 'live', 'clearedAt'], 1)} where d.id = r."id"`,
  },
} satisfies Record<string, RawStatement>;

async function ingestBatch(
  db: Db,
  { batch, first, keys, reports, clusters, heard }: PreparedBatch,
  onLocked: (clusters: readonly string[]) => Promise<void>,
): Promise<IngestOutcome[]> {
  return rawTransaction(db, async (query) => {
    // First, and in one statement in one order, lock the cluster_status row of every cluster of
    // the batch. Everything else of these clusters is read and written under these locks, so a
    // batch sharing a cluster waits here for this one's commit, then reads what it wrote.
    const current = new Map<string, ClusterStatusRow>();
    for (const raw of await query(STATEMENTS.lock, [clusters, heard, new Date()])) {
      const row = rowOf(clusterStatus, raw);
      current.set(row.cluster, row);
    }
    await onLocked(clusters);

    const stored = new Set<string>();
    // PostgreSQL returns a bigint as a string, PGlite as a number: the key is the same text.
    for (const r of await query<{ cluster: string; seq: string | number }>(STATEMENTS.reports, [reports]))
      stored.add(`${r.cluster}\0${r.seq}`);
    /** Whether each report of the batch was stored now: the first of its (cluster, seq), not there before. */
    const isStored = keys.map((key, i) => first.get(key) === i && stored.has(key));
    const changes = new Map<string, ClusterChanges>();
    const withStatus = new Set<string>();
    for (const [i, p] of batch.entries()) {
      if (!isStored[i]) continue;
      if (!changes.has(p.cluster))
        changes.set(p.cluster, { current: current.get(p.cluster)!, changed: false });
      if (p.report.body.case === 'status') withStatus.add(p.cluster);
    }
    if (changes.size === 0) return batch.map((p) => ({ seq: Number(p.report.seq), stored: false }));

    if (withStatus.size > 0) {
      for (const c of withStatus) changes.get(c)!.open = new Map();
      for (const raw of await query(STATEMENTS.openDrift, [[...withStatus]])) {
        const { id, clearedAt: _cleared, ...row } = rowOf(drift, raw);
        changes.get(row.cluster)!.open!.set(driftKey(row), { id, row, clearedAt: null, changed: false });
      }
    }

    const outcomes: IngestOutcome[] = [];
    const closed: DriftEvent[] = [];
    /** Events opened in this batch, in the order they were seen: they are inserted in that order. */
    const opened: DriftEvent[] = [];
    for (const [i, p] of batch.entries()) {
      const seq = Number(p.report.seq);
      if (!isStored[i]) {
        outcomes.push({ seq, stored: false });
        continue;
      }
      outcomes.push({ seq, stored: true });
      const c = changes.get(p.cluster)!;
      if (c.current.lastSeq != null && c.current.lastSeq >= seq) continue;
      Object.assign(c.current, applyReport(p.report, p.via, seq, c.current));
      c.changed = true;
      const body = p.report.body;
      if (body.case === 'status') {
        c.resources = resourceRows(p.cluster, body.value);
        closed.push(...updateDrift(c.open!, p.cluster, body.value, observedAtOf(p.report), opened));
      }
    }

    // The whole row of each cluster a report changed: the lock returned it, so the fields no
    // report set are written back as they are.
    const status = [...changes.values()].filter((c) => c.changed).map((c) => c.current);
    if (status.length > 0) await query(STATEMENTS.status, [JSON.stringify(status)]);
    const replaced = [...changes].filter(([, c]) => c.resources).map(([cluster]) => cluster);
    if (replaced.length > 0) {
      await query(STATEMENTS.deleteResources, [replaced]);
      const all = replaced.flatMap((cluster) => changes.get(cluster)!.resources!);
      if (all.length > 0) await query(STATEMENTS.resources, [JSON.stringify(all)]);
    }
    if (opened.length > 0)
      await query(STATEMENTS.drift, [
        JSON.stringify(opened.map((e) => ({ ...e.row, clearedAt: e.clearedAt }))),
      ]);
    // Events stored earlier whose values changed or that closed in this batch, in one statement.
    const events = [...[...changes.values()].flatMap((c) => [...(c.open?.values() ?? [])]), ...closed];
    const updated = events.filter((e) => e.id !== undefined && (e.changed || e.clearedAt));
    if (updated.length > 0)
      await query(STATEMENTS.updateDrift, [
        JSON.stringify(
          updated.map((e) => ({
            id: e.id,
            desired: e.row.desired,
            live: e.row.live,
            clearedAt: e.clearedAt,
          })),
        ),
      ]);
    return outcomes;
  });
}

function observedAtOf(report: ReportStatusRequest): Date {
  return report.observedAt ? timestampDate(report.observedAt) : new Date();
}

/** The cluster_status fields one report sets (the rest of the row stays as it is). */
function applyReport(
  report: ReportStatusRequest,
  via: ReportVia,
  seq: number,
  current: ClusterStatusRow,
): Partial<ClusterStatusRow> {
  const observedAt = observedAtOf(report);
  const body = report.body;
  if (body.case === 'status') {
    const s = body.value;
    const applied = Number(s.appliedGeneration);
    const clearRefusal =
      current.refusedGeneration != null &&
      (applied >= current.refusedGeneration || applied > (current.appliedGeneration ?? 0));
    const revision = s.revision || null;
    const phase = PHASE_NAMES[s.phase] ?? null;
    const health = HEALTH_NAMES[s.health] ?? 'Unknown';
    const values: Partial<ClusterStatusRow> = {
      lastSeq: seq,
      appliedGeneration: applied,
      healthySince: soakClock(current, { revision, phase, health }, observedAt),
      revision,
      bundleDigest: s.bundleDigest || null,
      phase,
      health,
      applyError: s.error || null,
      pendingGeneration: Number(s.pendingGeneration) || null,
      pendingReason: s.pendingReason || null,
      pendingUntil: s.pendingUntil ? timestampDate(s.pendingUntil) : null,
      reportedAt: observedAt,
      reportedVia: via,
    };
    if (clearRefusal) {
      values.refusal = null;
      values.refusedGeneration = null;
      values.refusedAt = null;
    }
    return values;
  }
  if (body.case === 'refused') {
    const r = body.value;
    return {
      lastSeq: seq,
      refusal: `bundle generation ${r.generation} refused (${r.code}): ${r.reason}`,
      refusedGeneration: Number(r.generation),
      refusedAt: observedAt,
    };
  }
  return { lastSeq: seq };
}

/**
 * The soak clock: since when a cluster has been Synced and Healthy at one revision. It keeps
 * running while reports stay green at that revision, and resets on any other state.
 */
export function soakClock(
  previous:
    | { revision: string | null; phase: string | null; health: string | null; healthySince: Date | null }
    | undefined,
  next: { revision: string | null; phase: string | null; health: string | null },
  observedAt: Date,
): Date | null {
  const green = (s: typeof next) => !!s.revision && s.phase === 'Synced' && s.health === 'Healthy';
  if (!green(next)) return null;
  if (previous && green(previous) && previous.revision === next.revision && previous.healthySince)
    return previous.healthySince;
  return observedAt;
}

function resourceRows(cluster: string, s: ClusterStatus): Array<typeof resourceStatus.$inferInsert> {
  const seen = new Set<string>();
  const rows = [];
  for (const r of s.resources) {
    const ref = r.ref;
    if (!ref) continue;
    const key = `${ref.group}/${ref.kind}/${ref.namespace}/${ref.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({
      cluster,
      group: ref.group,
      version: ref.version,
      kind: ref.kind,
      namespace: ref.namespace,
      name: ref.name,
      sync: SYNC_NAMES[r.sync] ?? 'Unknown',
      health: HEALTH_NAMES[r.health] ?? 'Unknown',
      healthReason: r.healthReason || null,
      error: r.error || null,
    });
  }
  return rows;
}

/**
 * Turns the drift in a status report into events, in memory: a field that starts drifting
 * opens one (since = the agent's `since`, else the report time); one that no longer drifts
 * is closed with `cleared_at` and kept as history. New events are added to `opened`; returns
 * the events this report closed.
 */
function updateDrift(
  open: Map<string, DriftEvent>,
  cluster: string,
  s: ClusterStatus,
  at: Date,
  opened: DriftEvent[],
): DriftEvent[] {
  const current = new Set<string>();
  for (const r of s.resources) {
    const ref = r.ref;
    if (!ref) continue;
    for (const f of r.drift) {
      const where = {
        group: ref.group,
        kind: ref.kind,
        namespace: ref.namespace,
        name: ref.name,
        field: f.path,
      };
      const key = driftKey(where);
      if (current.has(key)) continue;
      current.add(key);
      const existing = open.get(key);
      if (existing) {
        if (existing.row.desired !== f.desired || existing.row.live !== f.live) {
          existing.row = { ...existing.row, desired: f.desired, live: f.live };
          existing.changed = true;
        }
        continue;
      }
      const event: DriftEvent = {
        row: {
          cluster,
          ...where,
          version: ref.version,
          desired: f.desired,
          live: f.live,
          since: f.since ? timestampDate(f.since) : at,
        },
        clearedAt: null,
        changed: true,
      };
      open.set(key, event);
      opened.push(event);
    }
  }
  const closed: DriftEvent[] = [];
  for (const [key, event] of open) {
    if (current.has(key)) continue;
    event.clearedAt = at;
    closed.push(event);
    open.delete(key);
  }
  return closed;
}
