import { and, desc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import {
  bundles,
  clusterHolds,
  clusterStatus,
  clusters,
  drift,
  pauses,
  renderState,
  resourceStatus,
} from '../db/schema.js';
import { type Pause, pauseOf, toPause } from '../rollout/pause.js';

/** One row of `flotilla fleet status -o json` (keys are a contract scripts depend on). */
export interface FleetClusterStatus {
  name: string;
  environment: string;
  labels: Record<string, string>;
  /** The source revision the agent runs (from its status), or null before its first report. */
  revision: string | null;
  /** The generation the agent applied, or null before its first report. */
  generation: number | null;
  phase: string | null;
  sync: 'Synced' | 'OutOfSync';
  health: 'Healthy' | 'Progressing' | 'Degraded' | 'Unknown';
  /** Objects with open drift. */
  drifted: number;
  /** Last render, refusal or apply error as text naming its file or object, else null. */
  error: string | null;
  /** False once the cluster is silent past the heartbeat window: never a stale green. */
  connected: boolean;
  lastSeen: string | null;
  /** Newest bundle the hub published for the cluster. */
  desiredGeneration: number | null;
  desiredRevision: string | null;
  /**
   * The newest commit whose render of this cluster is its newest bundle (a commit that changed
   * nothing of this cluster, e.g. another cluster's app, leaves `desiredRevision` behind), or null
   * while its last render failed.
   */
  renderedRevision?: string | null;
  /** When the status shown was observed by the agent, and how it arrived (`stream` or `import`). */
  reportedAt: string | null;
  reportedVia: string | null;
  /** Since when it has been Synced and Healthy at `revision` (the promotion soak clock), else null. */
  healthySince: string | null;
  /** Set while the cluster (or its environment) is paused: it keeps its bundle and is left out of promotion gates. */
  paused: Pause | null;
  /**
   * Why the cluster does not run its newest render: a rollout wave or the blast radius at the
   * hub, or the agent holding a bundle (manual sync, maintenance window); null when nothing is held.
   */
  hold: string | null;
  /** A bundle the agent received and holds, and until when it holds it if it knows. */
  pendingGeneration: number | null;
  pendingUntil: string | null;
  /**
   * What the hub warns of in the newest bundle, one line per object (a Secret that travels in
   * clear). Always set by this hub; optional for rows made elsewhere (tests, older hubs).
   */
  warnings?: string[];
}

/** One row of `flotilla fleet drift -o json`. */
export interface FleetDrift {
  cluster: string;
  environment: string;
  /** Where the object comes from: `env/NAME` (its environment) or `app/NAME` (a fleet-wide app). */
  source: string;
  group: string;
  kind: string;
  namespace: string;
  name: string;
  field: string;
  desired: string;
  live: string;
  since: string;
  clearedAt?: string | null;
}

/** One row of `flotilla cluster list -o json`. */
export interface ClusterListEntry {
  name: string;
  environment: string;
  labels: Record<string, string>;
  connected: boolean;
  lastSeen: string | null;
  createdAt: string;
}

/** One object a cluster's agent reports on, with its open drift: `flotilla cluster show NAME`. */
export interface ClusterResource {
  group: string;
  version: string;
  kind: string;
  namespace: string;
  name: string;
  /** Where the object comes from: `env/NAME` (its environment) or `app/NAME` (a fleet-wide app). */
  source: string;
  sync: string;
  health: string;
  healthReason: string | null;
  error: string | null;
  drift: { field: string; desired: string; live: string; since: string }[];
}

/** `flotilla cluster show NAME -o json`: the cluster's fleet status row and its objects. */
export interface ClusterDetail {
  cluster: FleetClusterStatus;
  resources: ClusterResource[];
}

export interface FleetView {
  /** Every cluster, or only the one named. */
  status(only?: string): Promise<FleetClusterStatus[]>;
  /** One cluster in full (its objects from `source` only, when given), or undefined when there is no such cluster. */
  cluster(name: string, options?: { source?: string }): Promise<ClusterDetail | undefined>;
  /** Open drift (and cleared, with `history`), of objects from `source` only when given. */
  drift(options?: { history?: boolean; source?: string }): Promise<FleetDrift[]>;
  clusters(): Promise<ClusterListEntry[]>;
}

export interface FleetViewOptions {
  db: Db;
  /** A cluster silent longer than this is disconnected. */
  heartbeatWindowMs: number;
  now?: () => Date;
}

/** The fleet as the CLI and API show it, computed from the DB on each call. */
export function createFleetView(options: FleetViewOptions): FleetView {
  const { db } = options;
  const now = options.now ?? (() => new Date());
  const connected = (lastSeen: Date | null | undefined) =>
    !!lastSeen && now().getTime() - lastSeen.getTime() <= options.heartbeatWindowMs;

  /**
   * Per cluster, the sources of its objects that are not its environment's, from the bundle it
   * applied (its newest before its first report): a moved or relabelled cluster shows what it runs.
   */
  const appSources = async (names: string[]): Promise<Map<string, Record<string, string>>> => {
    if (names.length === 0) return new Map();
    const rows = await db
      .selectDistinctOn([bundles.cluster], { cluster: bundles.cluster, sources: bundles.sources })
      .from(bundles)
      .leftJoin(clusterStatus, eq(clusterStatus.cluster, bundles.cluster))
      .where(
        and(
          inArray(bundles.cluster, names),
          sql`(${clusterStatus.appliedGeneration} is null or ${bundles.generation} <= ${clusterStatus.appliedGeneration})`,
        ),
      )
      .orderBy(bundles.cluster, desc(bundles.generation));
    return new Map(rows.map((r) => [r.cluster, r.sources ?? {}]));
  };
  const sourceOf = (
    sources: Record<string, string> | undefined,
    environment: string,
    r: { group: string; kind: string; namespace: string; name: string },
  ) => sources?.[`${r.group}/${r.kind}/${r.namespace}/${r.name}`] ?? `env/${environment}`;

  const view: FleetView = {
    async status(only?: string) {
      // One cluster (cluster show) reads only its own rows; the fleet reads each table once.
      const mine = <T extends { cluster: unknown }>(table: T) =>
        only === undefined ? undefined : eq(table.cluster as never, only);
      const [all, statuses, latest, renders, resources, openDrift, pauseRows, holds] = await Promise.all([
        db
          .select()
          .from(clusters)
          .where(only === undefined ? undefined : eq(clusters.name, only))
          .orderBy(clusters.name),
        db.select().from(clusterStatus).where(mine(clusterStatus)),
        db
          .selectDistinctOn([bundles.cluster], {
            cluster: bundles.cluster,
            generation: bundles.generation,
            revision: bundles.revision,
            warnings: bundles.warnings,
          })
          .from(bundles)
          .where(mine(bundles))
          .orderBy(bundles.cluster, desc(bundles.generation)),
        db.select().from(renderState),
        db
          .select({
            cluster: resourceStatus.cluster,
            sync: resourceStatus.sync,
          })
          .from(resourceStatus)
          .where(mine(resourceStatus)),
        db
          .select({
            cluster: drift.cluster,
            group: drift.group,
            kind: drift.kind,
            namespace: drift.namespace,
            name: drift.name,
          })
          .from(drift)
          .where(and(isNull(drift.clearedAt), mine(drift))),
        db.select().from(pauses),
        db.select().from(clusterHolds).where(mine(clusterHolds)),
      ]);
      const pauseScopes = new Map(pauseRows.map((r) => [r.scope, toPause(r)]));
      const holdOf = new Map(holds.map((h) => [h.cluster, h.reason]));
      const statusOf = new Map(statuses.map((s) => [s.cluster, s]));
      const latestOf = new Map(latest.map((b) => [b.cluster, b]));
      const errorOf = new Map(renders.filter((r) => r.lastError).map((r) => [r.scope, r.lastError!]));
      const renderedOf = new Map(
        renders.filter((r) => !r.lastError && r.lastGoodRevision).map((r) => [r.scope, r.lastGoodRevision!]),
      );
      const resourcesOf = groupBy(resources, (r) => r.cluster);
      const driftOf = groupBy(openDrift, (d) => d.cluster);
      return all.map((c) => {
        const s = statusOf.get(c.name);
        const desired = latestOf.get(c.name);
        const res = resourcesOf.get(c.name) ?? [];
        const driftedObjects = new Set(
          (driftOf.get(c.name) ?? []).map((d) => `${d.group}/${d.kind}/${d.namespace}/${d.name}`),
        );
        const inSync =
          !!s &&
          s.appliedGeneration != null &&
          desired !== undefined &&
          s.appliedGeneration === desired.generation &&
          s.phase === 'Synced' &&
          res.every((r) => r.sync === 'Synced' || r.sync === 'Pruned');
        const error =
          errorOf.get('config') ??
          errorOf.get(`env:${c.environment}`) ??
          errorOf.get(`cluster:${c.name}`) ??
          s?.refusal ??
          s?.applyError ??
          null;
        const health = (s?.health ?? 'Unknown') as FleetClusterStatus['health'];
        const pendingGeneration = s?.pendingGeneration ?? null;
        const agentHold =
          pendingGeneration !== null
            ? `the agent holds generation ${pendingGeneration}: ${s?.pendingReason ?? 'sync policy is manual'}${s?.pendingUntil ? ` (until ${s.pendingUntil.toISOString()})` : ''}`
            : null;
        return {
          name: c.name,
          environment: c.environment,
          labels: c.labels,
          revision: s?.revision ?? null,
          generation: s?.appliedGeneration ?? null,
          phase: s?.phase ?? null,
          sync: inSync ? 'Synced' : 'OutOfSync',
          health: ['Healthy', 'Progressing', 'Degraded'].includes(health) ? health : 'Unknown',
          drifted: driftedObjects.size,
          error,
          connected: connected(s?.lastSeen),
          lastSeen: s?.lastSeen?.toISOString() ?? null,
          desiredGeneration: desired?.generation ?? null,
          desiredRevision: desired?.revision ?? null,
          renderedRevision: renderedOf.get(`cluster:${c.name}`) ?? null,
          reportedAt: s?.reportedAt?.toISOString() ?? null,
          reportedVia: s?.reportedVia ?? null,
          healthySince: s?.healthySince?.toISOString() ?? null,
          paused: pauseOf(pauseScopes, c) ?? null,
          hold: holdOf.get(c.name) ?? agentHold,
          pendingGeneration,
          pendingUntil: s?.pendingUntil?.toISOString() ?? null,
          warnings: desired?.warnings ?? [],
        } satisfies FleetClusterStatus;
      });
    },

    async cluster(name, opts = {}) {
      const [row] = await view.status(name);
      if (!row) return undefined;
      const [resources, open, sources] = await Promise.all([
        db.select().from(resourceStatus).where(eq(resourceStatus.cluster, name)),
        db
          .select()
          .from(drift)
          .where(and(eq(drift.cluster, name), isNull(drift.clearedAt)))
          .orderBy(drift.since, drift.id),
        appSources([name]).then((m) => m.get(name)),
      ]);
      const key = (r: { group: string; kind: string; namespace: string; name: string }) =>
        `${r.group}/${r.kind}/${r.namespace}/${r.name}`;
      const driftOf = new Map<string, ClusterResource['drift']>();
      for (const d of open) {
        const list = driftOf.get(key(d)) ?? [];
        list.push({ field: d.field, desired: d.desired, live: d.live, since: d.since.toISOString() });
        driftOf.set(key(d), list);
      }
      const order = (r: ClusterResource) => [r.namespace, r.group, r.kind, r.name].join('\0');
      return {
        cluster: row,
        resources: resources
          .map((r) => ({
            group: r.group,
            version: r.version,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
            source: sourceOf(sources, row.environment, r),
            sync: r.sync,
            health: r.health,
            healthReason: r.healthReason,
            error: r.error,
            drift: driftOf.get(key(r)) ?? [],
          }))
          .filter((r) => opts.source === undefined || r.source === opts.source)
          .sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0)),
      };
    },

    async drift(opts = {}) {
      const [all, rows] = await Promise.all([
        db.select().from(clusters),
        db
          .select()
          .from(drift)
          .where(opts.history ? undefined : isNull(drift.clearedAt))
          .orderBy(desc(drift.since), desc(drift.id)),
      ]);
      const envOf = new Map(all.map((c) => [c.name, c.environment]));
      const sources = await appSources([...new Set(rows.map((d) => d.cluster))]);
      const listed = rows.map((d) => ({
        cluster: d.cluster,
        environment: envOf.get(d.cluster) ?? '',
        source: sourceOf(sources.get(d.cluster), envOf.get(d.cluster) ?? '', d),
        group: d.group,
        kind: d.kind,
        namespace: d.namespace,
        name: d.name,
        field: d.field,
        desired: d.desired,
        live: d.live,
        since: d.since.toISOString(),
        ...(opts.history ? { clearedAt: d.clearedAt?.toISOString() ?? null } : {}),
      }));
      return opts.source === undefined ? listed : listed.filter((d) => d.source === opts.source);
    },

    async clusters() {
      const [all, statuses] = await Promise.all([
        db.select().from(clusters).orderBy(clusters.name),
        db.select().from(clusterStatus),
      ]);
      const statusOf = new Map(statuses.map((s) => [s.cluster, s]));
      return all.map((c) => {
        const s = statusOf.get(c.name);
        return {
          name: c.name,
          environment: c.environment,
          labels: c.labels,
          connected: connected(s?.lastSeen),
          lastSeen: s?.lastSeen?.toISOString() ?? null,
          createdAt: c.createdAt.toISOString(),
        };
      });
    },
  };
  return view;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const list = out.get(key(item));
    if (list) list.push(item);
    else out.set(key(item), [item]);
  }
  return out;
}
