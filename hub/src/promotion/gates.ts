/** What the hub knows of one cluster of the environment a promotion comes from. */
export interface SourceClusterState {
  name: string;
  revision: string | null;
  sync: string | null;
  health: string | null;
  connected: boolean;
  /** Since when the cluster has been Synced and Healthy at `revision`; null if it is not. */
  healthySince: Date | null;
  /** How it is paused (`paused by alice (site rebuild)`), or null: a paused cluster is left out of the gates. */
  paused?: string | null;
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

/** `notes` say what the gates left out (paused clusters), whether the promotion passes or not. */
export type GateResult =
  | { ok: true; revision: string; notes: string[] }
  | { ok: false; reasons: string[]; notes: string[] };

function duration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.ceil(ms / 1000)}s`;
}

/**
 * Decides whether FROM's running revision may move into TO. The rule is the same for
 * every mapping: every FROM cluster connected, Synced and Healthy at one revision (the
 * revision FROM verifiably runs), soaked that long, and approved where TO requires it.
 * Every failing gate is named, so a refused promotion says all that stands in its way. Paused
 * clusters are left out (a cluster gone for good must not hold every promotion), and said so.
 */
export function evaluateGates(input: GateInput): GateResult {
  const { from, to } = input;
  const reasons: string[] = [];
  const notes = input.clusters
    .filter((c) => c.paused)
    .map((c) => `${from} cluster ${c.name} is ${c.paused}: left out of the gates`);
  const clusters = input.clusters.filter((c) => !c.paused);
  if (clusters.length === 0) {
    return {
      ok: false,
      reasons: [
        input.clusters.length === 0
          ? `${from} has no clusters: nothing verifies what it runs`
          : `${from} has no cluster that is not paused: nothing verifies what it runs`,
      ],
      notes,
    };
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
  return reasons.length > 0 ? { ok: false, reasons, notes } : { ok: true, revision: revisions[0]!, notes };
}
