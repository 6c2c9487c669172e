/** What the hub knows of one cluster of the environment a promotion comes from. */
export interface SourceClusterState {
  name: string;
  revision: string | null;
  sync: string | null;
  health: string | null;
  connected: boolean;
  /** Since when the cluster has been Synced and Healthy at `revision`; null if it is not. */
  healthySince: Date | null;
}

export interface GateInput {
  from: string;
  to: string;
  clusters: SourceClusterState[];
  /** TO's gates from flotilla.yaml. */
  promotion: { soakMs: number; approve: boolean };
  approved: boolean;
  now: Date;
}

export type GateResult = { ok: true; revision: string } | { ok: false; reasons: string[] };

function duration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.ceil(ms / 1000)}s`;
}

/**
 * Decides whether FROM's running revision may move into TO. The rule is the same for
 * every mapping: every FROM cluster connected, Synced and Healthy at one revision (the
 * revision FROM verifiably runs), soaked that long, and approved where TO requires it.
 * Every failing gate is named, so a refused promotion says all that stands in its way.
 */
export function evaluateGates(input: GateInput): GateResult {
  const { from, to, clusters } = input;
  const reasons: string[] = [];
  if (clusters.length === 0) {
    return { ok: false, reasons: [`${from} has no clusters: nothing verifies what it runs`] };
  }
  for (const c of clusters) {
    if (!c.connected) reasons.push(`${from} cluster ${c.name} is disconnected`);
    if (!c.revision) reasons.push(`${from} cluster ${c.name} has reported no revision yet`);
    else if (c.sync !== 'Synced')
      reasons.push(`${from} cluster ${c.name} is ${c.sync ?? 'unknown'}, not Synced`);
    if (c.health !== 'Healthy')
      reasons.push(`${from} cluster ${c.name} is ${c.health ?? 'Unknown'}, not Healthy`);
  }
  const revisions = [...new Set(clusters.map((c) => c.revision).filter((r): r is string => Boolean(r)))];
  if (revisions.length > 1) {
    reasons.push(
      `${from} clusters run different revisions: ${clusters.map((c) => `${c.name}@${(c.revision ?? '-').slice(0, 12)}`).join(', ')}`,
    );
  }
  if (reasons.length === 0 && input.promotion.soakMs > 0) {
    for (const c of clusters) {
      const soaked = c.healthySince ? input.now.getTime() - c.healthySince.getTime() : 0;
      if (soaked < input.promotion.soakMs) {
        reasons.push(
          `${from} cluster ${c.name} has soaked ${duration(soaked)} of the ${duration(input.promotion.soakMs)} ${to} requires`,
        );
      }
    }
  }
  if (input.promotion.approve && !input.approved)
    reasons.push(`${to} requires approval: run again with --approve`);
  return reasons.length > 0 ? { ok: false, reasons } : { ok: true, revision: revisions[0]! };
}
