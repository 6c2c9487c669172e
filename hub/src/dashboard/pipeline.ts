import { errorMessage } from '@flotilla/shared';
import type { FleetConfig } from '../config/index.js';
import { evaluateGates, type SourceClusterState } from '../promotion/gates.js';
import type { PromotionRecord } from '../promotion/promotion-log.js';
import type { EnvDiff } from '../promotion/promotion-service.js';
import { type Pause, pauseText } from '../rollout/pause.js';
import type { GitSource } from '../source/index.js';
import type { FleetClusterStatus } from '../status/fleet-view.js';

/** What promoting FROM into the next environment would move, and what stands in its way. */
export interface PipelineStep {
  from: string;
  to: string;
  /** The revision FROM runs, which TO would get. */
  fromRevision: string | null;
  /** Files that would change in TO (environment and apps), without their patches. */
  files: { path: string; change: string; source?: string }[];
  /**
   * Commits on FROM's branch that changed FROM's directory since the revision TO last got
   * (null when TO never got one from FROM, or the history is too long to walk).
   */
  commits: number | null;
  /** Why the files could not be listed (FROM's clusters run different revisions…), else null. */
  diffError: string | null;
  /** Every gate that holds the promotion now, approval aside (the gates' own words). */
  blockedBy: string[];
  /** What the gates leave out (paused FROM clusters). */
  notes: string[];
  /** TO's soak, and how much of it the slowest FROM cluster still has to go (null: no soak). */
  soakMs: number;
  soakLeftMs: number | null;
  /** TO needs an approval (`promotion: {approve: true}`). */
  approve: boolean;
  /** Promotions into TO that wait for an approval. */
  pendingApprovals: { id: number | string; requestedBy: string; at: string }[];
}

/** One environment of the pipeline as the dashboard shows it. */
export interface PipelineStage {
  name: string;
  path: string;
  branch: string | null;
  /** The revision most of its clusters run (paused ones aside), or null before any report. */
  revision: string | null;
  /** Other revisions its clusters run, with how many run each (a rollout in progress). */
  otherRevisions: { revision: string; clusters: number }[];
  clusters: number;
  /** Clusters Synced and Healthy at `revision`. */
  ready: number;
  disconnected: number;
  /** Paused clusters, and the environment's own pause if it has one. */
  pausedClusters: number;
  paused: Pause | null;
  /** A promotion into it that is not rolled back yet: what a rollback would undo. */
  promotedInto: boolean;
  /** Promotion into the next environment; null for the last one. */
  next: PipelineStep | null;
}

export interface PipelineView {
  /** Environments in promotion order (flotilla.yaml's pipeline, else its environments' order). */
  stages(): Promise<{ stages: PipelineStage[]; configError: string | null }>;
}

export interface PipelineViewOptions {
  /** The fleet config of the newest good pass (undefined before one). */
  config(): Promise<FleetConfig | undefined>;
  fleet: { status(): Promise<FleetClusterStatus[]> };
  promotions: {
    diff(from: string, to: string): Promise<EnvDiff>;
    history(limit?: number): Promise<PromotionRecord[]>;
  };
  source: Pick<GitSource, 'commitParents' | 'treeId' | 'defaultBranch'>;
  /** Promotions waiting for an approval (four eyes), when the hub keeps them. */
  pendingApprovals?(): Promise<
    { id: number | string; from: string; to: string; requestedBy: string; at: string }[]
  >;
  now?: () => Date;
  /** How long a step's file list is reused for the same revisions; default 15 s. */
  diffTtlMs?: number;
}

/** Commits walked back at most when counting what a promotion moves. */
const MAX_COMMITS = 200;

/** The revision a cluster verifiably runs, as promotion's gates read it. */
const runningRevision = (c: FleetClusterStatus): string | null =>
  c.sync === 'Synced' && c.renderedRevision ? c.renderedRevision : c.revision;

/**
 * The pipeline as one picture: each environment's revision and readiness, and for each step
 * what promoting would move and which gates hold it. Gates are evaluated by promotion's own
 * `evaluateGates`, so the page and `flotilla promote` never disagree on why a promotion waits.
 */
export function createPipelineView(options: PipelineViewOptions): PipelineView {
  const now = options.now ?? (() => new Date());
  const ttl = options.diffTtlMs ?? 15_000;
  const diffs = new Map<string, { at: number; value: Promise<Pick<PipelineStep, 'files' | 'diffError'>> }>();

  const filesOf = (from: string, to: string, revision: string | null) => {
    const key = `${from}\0${to}\0${revision ?? ''}`;
    const cached = diffs.get(key);
    if (cached && now().getTime() - cached.at < ttl) return cached.value;
    const value = options.promotions.diff(from, to).then(
      (d) => ({
        files: d.files.map((f) => ({
          path: f.path,
          change: f.change,
          ...(f.source ? { source: f.source } : {}),
        })),
        diffError: null,
      }),
      (err) => ({ files: [], diffError: errorMessage(err) }),
    );
    for (const [k, v] of diffs) if (now().getTime() - v.at >= ttl) diffs.delete(k);
    diffs.set(key, { at: now().getTime(), value });
    return value;
  };

  /** First-parent commits from `head` back to `base` (exclusive) that changed `path`. */
  const commitsBetween = async (head: string, base: string, path: string): Promise<number | null> => {
    let count = 0;
    let cur = head;
    for (let i = 0; i < MAX_COMMITS; i++) {
      if (cur === base) return count;
      const [parent] = await options.source.commitParents(cur);
      if (!parent) return null;
      const [a, b] = await Promise.all([
        options.source.treeId(cur, path),
        options.source.treeId(parent, path),
      ]);
      if (a !== b) count++;
      cur = parent;
    }
    return null;
  };

  return {
    async stages() {
      let config: FleetConfig | undefined;
      let configError: string | null = null;
      try {
        config = await options.config();
      } catch (err) {
        configError = errorMessage(err);
      }
      if (!config) return { stages: [], configError: configError ?? 'flotilla.yaml has not been read yet' };
      const [fleet, history, pending] = await Promise.all([
        options.fleet.status(),
        options.promotions.history(1000),
        options.pendingApprovals?.() ?? Promise.resolve([]),
      ]);
      const order = config.pipeline.length > 0 ? config.pipeline : config.environments.map((e) => e.name);
      const envs = order.map((name) => config.environments.find((e) => e.name === name)!).filter(Boolean);
      const undone = new Set(history.filter((r) => r.undoes != null).map((r) => r.undoes));
      const stages = envs.map((env): Omit<PipelineStage, 'next'> & { members: FleetClusterStatus[] } => {
        const members = fleet.filter((c) => c.environment === env.name);
        const active = members.filter((c) => !c.paused);
        const byRevision = new Map<string, number>();
        for (const c of active) {
          const r = runningRevision(c);
          if (r) byRevision.set(r, (byRevision.get(r) ?? 0) + 1);
        }
        const ranked = [...byRevision].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
        const revision = ranked[0]?.[0] ?? null;
        const envPause = members.find((c) => c.paused?.scope === 'environment')?.paused ?? null;
        return {
          name: env.name,
          path: env.path,
          branch: env.branch ?? null,
          revision,
          otherRevisions: ranked.slice(1).map(([r, n]) => ({ revision: r, clusters: n })),
          clusters: members.length,
          ready: members.filter(
            (c) =>
              c.sync === 'Synced' && c.health === 'Healthy' && revision && runningRevision(c) === revision,
          ).length,
          disconnected: members.filter((c) => !c.connected).length,
          pausedClusters: members.length - active.length,
          paused: envPause,
          promotedInto: history.some((r) => r.kind === 'promote' && r.to === env.name && !undone.has(r.id)),
          members,
        };
      });
      const out: PipelineStage[] = [];
      for (const [i, stage] of stages.entries()) {
        const { members, ...shown } = stage;
        const toEnv = envs[i + 1];
        if (!toEnv) {
          out.push({ ...shown, next: null });
          continue;
        }
        const gateClusters: SourceClusterState[] = members.map((c) => ({
          name: c.name,
          revision: runningRevision(c),
          sync: c.sync,
          health: c.health,
          connected: c.connected,
          healthySince: c.healthySince ? new Date(c.healthySince) : null,
          paused: c.paused ? pauseText(c.paused) : null,
        }));
        const at = now();
        // Approval is shown on its own: here the gates say only what else holds the promotion.
        const gate = evaluateGates({
          from: stage.name,
          to: toEnv.name,
          clusters: gateClusters,
          promotion: toEnv.promotion,
          approved: true,
          now: at,
        });
        const soakMs = toEnv.promotion.soakMs;
        const active = gateClusters.filter((c) => !c.paused);
        const soakLeftMs =
          soakMs > 0 && active.length > 0
            ? Math.max(
                0,
                ...active.map((c) =>
                  c.healthySince ? soakMs - (at.getTime() - c.healthySince.getTime()) : soakMs,
                ),
              )
            : null;
        const last = history.find(
          (r) => r.kind === 'promote' && r.from === stage.name && r.to === toEnv.name && !undone.has(r.id),
        );
        const [diff, commits] = await Promise.all([
          filesOf(stage.name, toEnv.name, stage.revision),
          stage.revision && last
            ? commitsBetween(stage.revision, last.fromRevision, stage.path).catch(() => null)
            : Promise.resolve(null),
        ]);
        out.push({
          ...shown,
          next: {
            from: stage.name,
            to: toEnv.name,
            fromRevision: stage.revision,
            ...diff,
            commits,
            blockedBy: gate.ok ? [] : gate.reasons,
            notes: gate.notes,
            soakMs,
            soakLeftMs,
            approve: toEnv.promotion.approve,
            pendingApprovals: pending
              .filter((p) => p.from === stage.name && p.to === toEnv.name)
              .map(({ id, requestedBy, at }) => ({ id, requestedBy, at })),
          },
        });
      }
      return { stages: out, configError };
    },
  };
}
