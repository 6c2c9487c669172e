/**
 * The agent as a cluster citizen: `/healthz` (a watchdog over its loops), `/readyz` and
 * Prometheus `/metrics`, served when `flotilla-agent run --metrics-addr` is given. Loaded only
 * then (prom-client stays out of an agent that does not serve metrics).
 */
export {
  type AgentHealth,
  type AgentHealthOptions,
  createAgentHealth,
  type Liveness,
  type Readiness,
} from './agent-health.js';
export { instrumentReconciler, type ReconcilerObserver } from './instrument.js';
export { type AgentMetrics, createAgentMetrics, type Link, type MetricSources } from './metrics.js';
export {
  createWatchdog,
  DEFAULT_STALL_TIMEOUT_MS,
  LOOPS,
  type LoopName,
  type LoopProgress,
  type LoopState,
  type Watchdog,
} from './progress.js';
export { type HealthServer, parseListenAddress, startHealthServer } from './server.js';
