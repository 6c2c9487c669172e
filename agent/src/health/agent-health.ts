import { createLogger, type Logger } from '@flotilla/shared';
import type { Reconciler } from '../reconcile/index.js';
import { instrumentReconciler } from './instrument.js';
import { type AgentMetrics, createAgentMetrics, type Link, type MetricSources } from './metrics.js';
import {
  createWatchdog,
  DEFAULT_STALL_TIMEOUT_MS,
  type LoopName,
  type LoopProgress,
  type LoopState,
} from './progress.js';

export interface AgentHealthOptions {
  cluster: string;
  version: string;
  /** How long a busy loop may go without progress before /healthz fails; default 300 s. */
  stallTimeoutMs?: number;
  logger?: Logger;
  now?: () => number;
}

/** /healthz: alive unless a loop is stalled. */
export interface Liveness {
  ok: boolean;
  loops: LoopState[];
}

/** /readyz: joined (the agent runs only then), a bundle verified, and applied once without failure. */
export interface Readiness {
  ok: boolean;
  reason: string;
}

/**
 * Everything the agent's health endpoints answer from: the watchdog over its loops, readiness,
 * and the Prometheus metrics. The run loop hands its parts the hooks below; none of them does
 * I/O, so an agent whose endpoint nobody scrapes pays for timestamps and counters only.
 */
export interface AgentHealth {
  loop(name: LoopName): LoopProgress;
  connection(link: Link, up: boolean): void;
  healScheduled(heal: { delayMs: number; attempt: number }): void;
  /** The reconciler with the watchdog and the metrics looking on (see instrument.ts). */
  instrument(reconciler: Reconciler): Reconciler;
  /** Where the metrics read the agent's state from (see MetricSources). */
  attach(sources: MetricSources): void;
  liveness(): Liveness;
  readiness(): Readiness;
  readonly metrics: Pick<AgentMetrics, 'contentType' | 'render'>;
}

export function createAgentHealth(options: AgentHealthOptions): AgentHealth {
  const log = options.logger ?? createLogger({ name: 'agent', level: 'silent' });
  const watchdog = createWatchdog({
    boundMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    ...(options.now ? { now: options.now } : {}),
  });
  let ready = false;
  let notReady = 'no bundle applied yet';
  const metrics = createAgentMetrics({
    cluster: options.cluster,
    version: options.version,
    loops: () => watchdog.check(),
    ready: () => ready,
    ...(options.now ? { now: options.now } : {}),
  });
  /** Loops reported stalled, so that each stall is logged once. */
  const stalled = new Set<LoopName>();

  return {
    loop: (name) => watchdog.loop(name),
    connection: (link, up) => metrics.connection(link, up),
    healScheduled: (heal) => metrics.healScheduled(heal),
    instrument(reconciler) {
      return instrumentReconciler(reconciler, {
        reconcile: watchdog.loop('reconcile'),
        watch: watchdog.loop('watch'),
        reconciled(result, durationMs) {
          metrics.reconciled(result, durationMs);
          if (ready) return;
          if (result.phase !== 'Failed') {
            ready = true;
            log.info('ready: the first bundle is applied');
          } else notReady = `the apply failed: ${result.error ?? 'unknown error'}`;
        },
        resources: (reports, complete) => metrics.resources(reports, complete),
      });
    },
    attach: (sources) => metrics.attach(sources),
    liveness() {
      const loops = watchdog.check();
      for (const l of loops) {
        if (l.state !== 'stalled') {
          stalled.delete(l.loop);
          continue;
        }
        if (stalled.has(l.loop)) continue;
        stalled.add(l.loop);
        log.error(
          {
            loop: l.loop,
            ...(l.part ? { part: l.part } : {}),
            silentS: Math.round(l.silentMs / 1000),
            boundS: Math.round(l.boundMs / 1000),
          },
          'loop stalled: no progress within the stall timeout; /healthz fails so that the agent is restarted',
        );
      }
      return { ok: loops.every((l) => l.state !== 'stalled'), loops };
    },
    readiness: () => ({ ok: ready, reason: ready ? 'ready' : notReady }),
    metrics,
  };
}
