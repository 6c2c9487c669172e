import { toJson } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import {
  type ClusterStatus,
  Health,
  Phase,
  type ReportStatusRequest,
  ReportStatusRequestSchema,
  SyncState,
} from '@flotilla/proto';
import { and, eq, isNull } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { clusterStatus, drift, resourceStatus, statusReports } from '../db/schema.js';

/** How a report reached the hub: the live gRPC stream, or a file carried out of an air-gapped site. */
export type ReportVia = 'stream' | 'import';

/** Outcome of one report: stored now, or a duplicate of a stored one (same cluster and seq). */
export type IngestOutcome = { seq: number; stored: boolean };

export const PHASE_NAMES: Record<Phase, string | null> = {
  [Phase.UNSPECIFIED]: null,
  [Phase.PROGRESSING]: 'Progressing',
  [Phase.SYNCED]: 'Synced',
  [Phase.FAILED]: 'Failed',
};

export const HEALTH_NAMES: Record<Health, string> = {
  [Health.UNSPECIFIED]: 'Unknown',
  [Health.HEALTHY]: 'Healthy',
  [Health.PROGRESSING]: 'Progressing',
  [Health.DEGRADED]: 'Degraded',
  [Health.UNKNOWN]: 'Unknown',
};

export const SYNC_NAMES: Record<SyncState, string> = {
  [SyncState.UNSPECIFIED]: 'Unknown',
  [SyncState.SYNCED]: 'Synced',
  [SyncState.OUT_OF_SYNC]: 'OutOfSync',
  [SyncState.MISSING]: 'Missing',
  [SyncState.PRUNED]: 'Pruned',
};

/** Stores agent reports; the same code path serves the stream and air-gapped imports. */
export interface StatusIngest {
  /**
   * Stores one report and updates the cluster's current status, resources and drift, in one
   * transaction. Returns only after the report is durable, so the caller may then Ack it.
   * A report with a (cluster, seq) already stored is a duplicate: acknowledged, not applied.
   */
  ingest(cluster: string, report: ReportStatusRequest, via: ReportVia): Promise<IngestOutcome>;
  /** Records that the cluster was heard from (any report, duplicate or not). */
  touch(cluster: string, at?: Date): Promise<void>;
}

export function createStatusIngest(db: Db): StatusIngest {
  const touch = async (cluster: string, at = new Date()) => {
    await db
      .insert(clusterStatus)
      .values({ cluster, lastSeen: at })
      .onConflictDoUpdate({ target: clusterStatus.cluster, set: { lastSeen: at } });
  };
  return {
    touch,
    async ingest(cluster, report, via) {
      const seq = Number(report.seq);
      const observedAt = report.observedAt ? timestampDate(report.observedAt) : new Date();
      const stored = await db.transaction(async (tx) => {
        const inserted = await tx
          .insert(statusReports)
          .values({
            cluster,
            seq,
            kind: report.body.case ?? 'empty',
            observedAt,
            via,
            body: toJson(ReportStatusRequestSchema, report) as object,
          })
          .onConflictDoNothing()
          .returning({ id: statusReports.id });
        if (inserted.length === 0) return false;
        const [current] = await tx.select().from(clusterStatus).where(eq(clusterStatus.cluster, cluster));
        // An older report (e.g. an imported file after live reports) is stored but does not rewind the view.
        if (current?.lastSeq != null && current.lastSeq >= seq) return true;
        const base = { cluster, lastSeq: seq };
        const body = report.body;
        if (body.case === 'status') {
          const s = body.value;
          const applied = Number(s.appliedGeneration);
          // A refusal clears once a newer genuine bundle is applied after it. The refused
          // generation itself came from an unverified head, so it alone cannot be the measure.
          const clearRefusal =
            current?.refusedGeneration != null &&
            (applied >= current.refusedGeneration || applied > (current.appliedGeneration ?? 0));
          const revision = s.revision || null;
          const phase = PHASE_NAMES[s.phase] ?? null;
          const health = HEALTH_NAMES[s.health] ?? 'Unknown';
          const values = {
            ...base,
            appliedGeneration: applied,
            healthySince: soakClock(current, { revision, phase, health }, observedAt),
            revision,
            bundleDigest: s.bundleDigest || null,
            phase,
            health,
            applyError: s.error || null,
            pendingGeneration: Number(s.pendingGeneration) || null,
            reportedAt: observedAt,
            reportedVia: via,
            ...(clearRefusal ? { refusal: null, refusedGeneration: null, refusedAt: null } : {}),
          };
          await tx
            .insert(clusterStatus)
            .values(values)
            .onConflictDoUpdate({ target: clusterStatus.cluster, set: values });
          await replaceResources(tx as unknown as Db, cluster, s);
          await updateDrift(tx as unknown as Db, cluster, s, observedAt);
        } else if (body.case === 'refused') {
          const r = body.value;
          const values = {
            ...base,
            refusal: `bundle generation ${r.generation} refused (${r.code}): ${r.reason}`,
            refusedGeneration: Number(r.generation),
            refusedAt: observedAt,
          };
          await tx
            .insert(clusterStatus)
            .values(values)
            .onConflictDoUpdate({ target: clusterStatus.cluster, set: values });
        } else {
          await tx
            .insert(clusterStatus)
            .values(base)
            .onConflictDoUpdate({ target: clusterStatus.cluster, set: base });
        }
        return true;
      });
      return { seq, stored };
    },
  };
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

async function replaceResources(tx: Db, cluster: string, s: ClusterStatus): Promise<void> {
  await tx.delete(resourceStatus).where(eq(resourceStatus.cluster, cluster));
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
  if (rows.length > 0) await tx.insert(resourceStatus).values(rows);
}

/**
 * Turns the drift in a status report into events: a field that starts drifting opens a row
 * (since = the agent's `since`, else the report time); one that no longer drifts gets
 * `cleared_at`, and stays as history.
 */
async function updateDrift(tx: Db, cluster: string, s: ClusterStatus, at: Date): Promise<void> {
  const open = await tx
    .select()
    .from(drift)
    .where(and(eq(drift.cluster, cluster), isNull(drift.clearedAt)));
  const keyOf = (d: { group: string; kind: string; namespace: string; name: string; field: string }) =>
    `${d.group}/${d.kind}/${d.namespace}/${d.name}#${d.field}`;
  const openByKey = new Map(open.map((d) => [keyOf(d), d]));
  const current = new Set<string>();
  for (const r of s.resources) {
    const ref = r.ref;
    if (!ref) continue;
    for (const f of r.drift) {
      const row = {
        group: ref.group,
        kind: ref.kind,
        namespace: ref.namespace,
        name: ref.name,
        field: f.path,
      };
      const key = keyOf(row);
      if (current.has(key)) continue;
      current.add(key);
      const existing = openByKey.get(key);
      if (existing) {
        if (existing.desired !== f.desired || existing.live !== f.live) {
          await tx.update(drift).set({ desired: f.desired, live: f.live }).where(eq(drift.id, existing.id));
        }
        continue;
      }
      await tx.insert(drift).values({
        cluster,
        ...row,
        version: ref.version,
        desired: f.desired,
        live: f.live,
        since: f.since ? timestampDate(f.since) : at,
      });
    }
  }
  for (const [key, d] of openByKey) {
    if (!current.has(key)) await tx.update(drift).set({ clearedAt: at }).where(eq(drift.id, d.id));
  }
}
