import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  BundleRefusedSchema,
  type ClusterStatus,
  ClusterStatusSchema,
  FieldDriftSchema,
  HeartbeatSchema,
  ObjectRefSchema,
  ResourceStatusSchema,
} from '@flotilla/proto';
import { type Bundle, HEALTH_CODES, PHASE_CODES, SYNC_CODES } from '@flotilla/shared';
import type { ReportBody } from './outbox.js';
import type { HealthState, ReconcileResult, ResourceReport } from './reconcile/index.js';

/** Worst first: the cluster is as healthy as its least healthy object. */
const HEALTH_ORDER: HealthState[] = ['Degraded', 'Progressing', 'Unknown', 'Healthy'];

/** The cluster's health from its objects' (Healthy when there are none). */
export function overallHealth(resources: readonly ResourceReport[]): HealthState {
  for (const h of HEALTH_ORDER) if (resources.some((r) => r.health === h)) return h;
  return 'Healthy';
}

/** What the cluster is doing, in the terms of a status report. */
export interface StatusSnapshot {
  bundle?: Bundle;
  bundleDigest?: string;
  phase: ReconcileResult['phase'];
  health: HealthState;
  resources: readonly ResourceReport[];
  error?: string;
  pendingGeneration?: number;
}

/** A full ClusterStatus (each one carries the whole state, so a newer one supersedes older ones). */
export function clusterStatus(s: StatusSnapshot): ClusterStatus {
  return create(ClusterStatusSchema, {
    appliedGeneration: BigInt(s.bundle?.generation ?? 0),
    revision: s.bundle?.revision ?? '',
    bundleDigest: s.bundleDigest ?? '',
    phase: PHASE_CODES[s.phase],
    health: HEALTH_CODES[s.health],
    error: s.error ?? '',
    pendingGeneration: BigInt(s.pendingGeneration ?? 0),
    resources: s.resources.map((r) =>
      create(ResourceStatusSchema, {
        ref: create(ObjectRefSchema, r.id),
        sync: SYNC_CODES[r.sync],
        health: HEALTH_CODES[r.health],
        healthReason: r.healthReason,
        error: r.error ?? '',
        drift: r.drift.map((d) =>
          create(FieldDriftSchema, {
            path: d.path,
            desired: d.desired,
            live: d.live,
            since: timestampFromDate(d.since),
          }),
        ),
      }),
    ),
  });
}

export function statusBody(s: StatusSnapshot): ReportBody {
  return { case: 'status', value: clusterStatus(s) };
}

export function heartbeatBody(appliedGeneration: number): ReportBody {
  return {
    case: 'heartbeat',
    value: create(HeartbeatSchema, { appliedGeneration: BigInt(appliedGeneration) }),
  };
}

export function refusedBody(refusal: {
  generation: number;
  digest: string;
  code: string;
  reason: string;
}): ReportBody {
  return {
    case: 'refused',
    value: create(BundleRefusedSchema, { ...refusal, generation: BigInt(refusal.generation) }),
  };
}
