/**
 * The Flotilla agent: join, pull and verify bundles, the run loop (sync policy, drift,
 * self-heal), the durable status outbox and its gRPC stream, and the air-gapped import
 * and status export. The reconcile engine is `./reconcile/index.ts`; the CLI is `flotilla-agent`.
 */
export {
  type Agent,
  type AgentOptions,
  type AgentSnapshot,
  type BundleOrigin,
  createAgent,
  type OfferOutcome,
} from './agent.js';
export {
  exportStatusFile,
  type ImportOptions,
  importBundleFile,
  type StatusExportOptions,
  verifyBundleFile,
} from './air-gap.js';
export { certificateHash, fetchPinnedCa, hubChannelCredentials, parseHubAddress } from './hub-tls.js';
export { AGENT_VERSION, type JoinOptions, join } from './join.js';
export {
  createOutbox,
  DEFAULT_OUTBOX_CAP,
  type Outbox,
  type OutboxOptions,
  type OutboxSummary,
  type ReportBody,
  replayOutbox,
} from './outbox.js';
export {
  type BundlePuller,
  type BundlePullerOptions,
  type FetchOptions,
  fetchLatestBundle,
  type PullOutcome,
  startBundlePuller,
} from './pull.js';
export { type RunningAgent, type RunOptions, runAgent } from './run.js';
export {
  type AgentIdentity,
  type BundleStore,
  createBundleStore,
  createFileIdentityStore,
  createSecretIdentityStore,
  DEFAULT_STATE_DIR,
  IDENTITY_SECRET_NAME,
  type IdentityStore,
  identitySigningKey,
  identityTrustedKeys,
  lockStateDir,
} from './state.js';
export { type StatusClient, type StatusClientOptions, startStatusClient } from './status-client.js';
export { clusterStatus, overallHealth, type StatusSnapshot } from './status-report.js';
