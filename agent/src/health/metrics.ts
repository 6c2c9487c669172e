import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AgentSnapshot } from '../agent.js';
import type { ReconcileResult, ResourceReport } from '../reconcile/index.js';
import type { LoopState } from './progress.js';

/** What the gauges read when scraped: the agent as it is now. */
export interface MetricSources {
  snapshot(): AgentSnapshot;
  /** Unacknowledged reports, oldest first, with the time each was observed. */
  pendingReports(): readonly { observedAt?: { seconds: bigint; nanos: number } }[];
  /** The agent credential's expiry (ISO 8601), when the identity records one. */
  credentialExpiresAt(): string | undefined;
}

/** The links whose state and reconnects are counted: NATS (bundles) and the hub's gRPC status stream. */
export type Link = 'nats' | 'hub';

/**
 * The agent's Prometheus metrics (prom-client), all prefixed `flotilla_agent_`. Events are
 * recorded as they happen (reconciles, heals, connections, drift that closes); the state of
 * the moment (generation, objects, outbox, watchdog) is read from the sources at each scrape.
 */
export interface AgentMetrics {
  readonly contentType: string;
  render(): Promise<string>;
  /** Reads the agent from these from now on; until then those gauges are empty. */
  attach(sources: MetricSources): void;
  reconciled(result: ReconcileResult, durationMs: number): void;
  /** Object reports from an apply (`complete`: every object of the bundle) or the watch: counts drift that closes. */
  resources(reports: readonly ResourceReport[], complete: boolean): void;
  healScheduled(heal: { delayMs: number; attempt: number }): void;
  connection(link: Link, up: boolean): void;
}

export interface AgentMetricsOptions {
  cluster: string;
  version: string;
  loops: () => LoopState[];
  ready: () => boolean;
  now?: () => number;
}

const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Drift worth a heal: drifted fields or a missing object (as the run loop decides). */
const drifting = (r: ResourceReport) => r.drift.length > 0 || r.sync === 'Missing';

const key = (r: ResourceReport) =>
  `${r.id.group}/${r.id.version}/${r.id.kind}/${r.id.namespace}/${r.id.name}`;

export function createAgentMetrics(options: AgentMetricsOptions): AgentMetrics {
  const now = options.now ?? Date.now;
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  let sources: MetricSources | undefined;

  new Gauge({
    name: 'flotilla_agent_info',
    help: 'Always 1; the cluster and the agent version are labels.',
    labelNames: ['cluster', 'version'],
    registers,
  }).set({ cluster: options.cluster, version: options.version }, 1);
  new Gauge({
    name: 'flotilla_agent_ready',
    help: '1 once a bundle was verified and applied without failure since the agent started (/readyz).',
    registers,
    collect() {
      this.set(options.ready() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'flotilla_agent_applied_generation',
    help: 'Generation of the bundle the agent enforces; 0 before it has one.',
    registers,
    collect() {
      if (sources) this.set(sources.snapshot().bundle?.generation ?? 0);
    },
  });
  new Gauge({
    name: 'flotilla_agent_bundle_age_seconds',
    help: 'Seconds since the hub made the bundle the agent enforces.',
    registers,
    collect() {
      this.reset();
      const created = sources?.snapshot().bundle?.createdAt;
      if (created) this.set(Math.max(0, (now() - Date.parse(created)) / 1000));
    },
  });
  new Gauge({
    name: 'flotilla_agent_objects',
    help: "The bundle's objects by sync and health state.",
    labelNames: ['sync', 'health'],
    registers,
    collect() {
      this.reset();
      if (!sources) return;
      const counts = new Map<string, { sync: string; health: string; n: number }>();
      for (const r of sources.snapshot().resources) {
        const k = `${r.sync} ${r.health}`;
        const c = counts.get(k) ?? { sync: r.sync, health: r.health, n: 0 };
        c.n++;
        counts.set(k, c);
      }
      for (const c of counts.values()) this.set({ sync: c.sync, health: c.health }, c.n);
    },
  });
  new Gauge({
    name: 'flotilla_agent_drift_open_objects',
    help: 'Objects with open drift now (drifted fields, or missing).',
    registers,
    collect() {
      if (sources) this.set(sources.snapshot().resources.filter(drifting).length);
    },
  });
  const driftHealed = new Counter({
    name: 'flotilla_agent_drift_healed_total',
    help: 'Objects whose drift closed (healed by the agent or put back by someone else).',
    registers,
  });
  const healBackoff = new Gauge({
    name: 'flotilla_agent_heal_backoff_seconds',
    help: 'Delay of the latest self-heal re-apply (grows while drift keeps coming back); 0 once nothing is left to heal.',
    registers,
  });
  const heals = new Counter({
    name: 'flotilla_agent_heals_total',
    help: 'Self-heal re-applies scheduled (for drift or failed objects).',
    registers,
  });
  const reconciles = new Counter({
    name: 'flotilla_agent_reconciles_total',
    help: 'Bundle applies, by resulting phase.',
    labelNames: ['phase'],
    registers,
  });
  const reconcileSeconds = new Histogram({
    name: 'flotilla_agent_reconcile_duration_seconds',
    help: 'Duration of a whole bundle apply (apply, prune, inventory).',
    buckets: DURATION_BUCKETS,
    registers,
  });
  const applySeconds = new Histogram({
    name: 'flotilla_agent_apply_duration_seconds',
    help: "Duration of the apply stage of a bundle apply (every object's server-side apply or dry run).",
    buckets: DURATION_BUCKETS,
    registers,
  });
  const pruneSeconds = new Histogram({
    name: 'flotilla_agent_prune_duration_seconds',
    help: 'Duration of the prune stage, for applies that pruned anything.',
    buckets: DURATION_BUCKETS,
    registers,
  });
  const appliedObjects = new Counter({
    name: 'flotilla_agent_applied_objects_total',
    help: 'Objects by what a bundle apply did to them: created, configured, unchanged, skipped, failed.',
    labelNames: ['action'],
    registers,
  });
  const prunedObjects = new Counter({
    name: 'flotilla_agent_pruned_objects_total',
    help: 'Objects deleted because their bundle no longer holds them.',
    registers,
  });
  new Gauge({
    name: 'flotilla_agent_outbox_reports',
    help: 'Status reports in the outbox that the hub has not acknowledged yet.',
    registers,
    collect() {
      if (sources) this.set(sources.pendingReports().length);
    },
  });
  new Gauge({
    name: 'flotilla_agent_outbox_oldest_report_age_seconds',
    help: 'Age of the oldest unacknowledged status report; 0 when the outbox is empty.',
    registers,
    collect() {
      const at = sources?.pendingReports()[0]?.observedAt;
      const ms = at ? Number(at.seconds) * 1000 + at.nanos / 1e6 : undefined;
      this.set(ms === undefined ? 0 : Math.max(0, (now() - ms) / 1000));
    },
  });
  const connected = new Gauge({
    name: 'flotilla_agent_connected',
    help: '1 while the link is up: nats (bundles) or hub (the gRPC status stream, once the hub answered).',
    labelNames: ['link'],
    registers,
  });
  const reconnects = new Counter({
    name: 'flotilla_agent_reconnects_total',
    help: 'Times a link came back up after being down.',
    labelNames: ['link'],
    registers,
  });
  new Gauge({
    name: 'flotilla_agent_credential_expiry_timestamp_seconds',
    help: 'When the agent credential expires (Unix time); the agent rotates it a third of the way through its lifetime.',
    registers,
    collect() {
      this.reset();
      const at = sources?.credentialExpiresAt();
      const ms = at ? Date.parse(at) : Number.NaN;
      if (Number.isFinite(ms)) this.set(ms / 1000);
    },
  });
  new Gauge({
    name: 'flotilla_agent_loop_silent_seconds',
    help: 'How long each loop has been busy without progress (0 while idle); /healthz fails past the stall timeout.',
    labelNames: ['loop'],
    registers,
    collect() {
      for (const l of options.loops()) this.set({ loop: l.loop }, l.silentMs / 1000);
    },
  });
  new Gauge({
    name: 'flotilla_agent_loop_stalled',
    help: '1 for a loop busy without progress past the stall timeout.',
    labelNames: ['loop'],
    registers,
    collect() {
      for (const l of options.loops()) this.set({ loop: l.loop }, l.state === 'stalled' ? 1 : 0);
    },
  });
  for (const link of ['nats', 'hub'] as const) {
    connected.set({ link }, 0);
    reconnects.inc({ link }, 0);
  }

  const wasDrifting = new Map<string, boolean>();
  const everUp = new Set<Link>();
  const isUp = new Map<Link, boolean>();

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    attach(s) {
      sources = s;
    },
    reconciled(result, durationMs) {
      reconciles.inc({ phase: result.phase });
      reconcileSeconds.observe(durationMs / 1000);
      if (result.timings) {
        applySeconds.observe(result.timings.applyMs / 1000);
        if (result.timings.pruneMs > 0) pruneSeconds.observe(result.timings.pruneMs / 1000);
      }
      const c = result.changes;
      for (const action of ['created', 'configured', 'unchanged', 'skipped'] as const) {
        if (c[action].length) appliedObjects.inc({ action }, c[action].length);
      }
      if (c.failed.length) appliedObjects.inc({ action: 'failed' }, c.failed.length);
      if (c.deleted.length) prunedObjects.inc(c.deleted.length);
      if (result.phase !== 'Failed' && c.failed.length === 0 && !result.resources.some(drifting)) {
        healBackoff.set(0);
      }
    },
    resources(reports, complete) {
      const seen = new Set<string>();
      for (const r of reports) {
        const k = key(r);
        seen.add(k);
        if (r.sync === 'Pruned') {
          wasDrifting.delete(k);
          continue;
        }
        const now = drifting(r);
        if (wasDrifting.get(k) && !now) driftHealed.inc();
        wasDrifting.set(k, now);
      }
      if (complete) for (const k of wasDrifting.keys()) if (!seen.has(k)) wasDrifting.delete(k);
    },
    healScheduled({ delayMs }) {
      heals.inc();
      healBackoff.set(delayMs / 1000);
    },
    connection(link, up) {
      if (isUp.get(link) === up) return;
      isUp.set(link, up);
      connected.set({ link }, up ? 1 : 0);
      if (up && everUp.has(link)) reconnects.inc({ link });
      if (up) everUp.add(link);
    },
  };
}
