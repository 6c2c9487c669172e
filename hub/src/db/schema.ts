import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/** bytea as a Uint8Array on both PGlite and node-postgres. */
const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  toDriver: (value) => Buffer.from(value),
  fromDriver: (value) => new Uint8Array(value),
});

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** A registered target; labels are set here only, never by an agent. */
export const clusters = pgTable('clusters', {
  name: text('name').primaryKey(),
  environment: text('environment').notNull(),
  labels: jsonb('labels').$type<Record<string, string>>().notNull().default({}),
  createdAt: at('created_at').notNull().defaultNow(),
});

/** Single-use join tokens, stored only as sha256 hashes. */
export const bootstrapTokens = pgTable('bootstrap_tokens', {
  id: serial('id').primaryKey(),
  tokenHash: text('token_hash').notNull().unique(),
  cluster: text('cluster').notNull(),
  expiresAt: at('expires_at').notNull(),
  usedAt: at('used_at'),
  createdAt: at('created_at').notNull().defaultNow(),
});

/** Long-lived agent credentials (hashed), with the agent's key and its NATS user. */
export const agentCredentials = pgTable(
  'agent_credentials',
  {
    id: serial('id').primaryKey(),
    credentialHash: text('credential_hash').notNull().unique(),
    cluster: text('cluster').notNull(),
    /** Raw 32-byte ed25519 public key of the agent (verifies air-gapped status files). */
    agentPublicKey: bytea('agent_public_key').notNull(),
    /** The NATS user public nkey minted for this agent, revoked on removal. */
    natsUser: text('nats_user').notNull(),
    createdAt: at('created_at').notNull().defaultNow(),
    revokedAt: at('revoked_at'),
    /** After this the credential is refused; null for credentials issued before expiry existed. */
    expiresAt: at('expires_at'),
    /** The credential this one replaces (rotation), revoked when this one is first used. */
    supersedes: integer('supersedes'),
  },
  (t) => [index('agent_credentials_cluster').on(t.cluster)],
);

/** Every bundle ever published; the newest per cluster is what JetStream holds. */
export const bundles = pgTable(
  'bundles',
  {
    id: serial('id').primaryKey(),
    cluster: text('cluster').notNull(),
    generation: integer('generation').notNull(),
    contentDigest: text('content_digest').notNull(),
    revision: text('revision').notNull(),
    envelope: bytea('envelope').notNull(),
    createdAt: at('created_at').notNull().defaultNow(),
    /** Set once the bundle is on NATS; a bundle stored but not yet published is retried. */
    publishedAt: at('published_at'),
    /**
     * What the newest render of this content read (the renderer's input key with the sync
     * policy): a pass whose render inputs have this key again has nothing to do.
     */
    inputKey: text('input_key'),
    /**
     * The source of each object that is not the environment's own, by identity key
     * (`group/kind/namespace/name` → `app/NAME`), as the objects' `flotilla.dev/source`
     * annotation says; null when every object is the environment's.
     */
    sources: jsonb('sources').$type<Record<string, string>>(),
    /**
     * What the hub warns of in this content, one line per object, e.g. a Secret that travels in
     * clear (not SOPS-encrypted). Never a value.
     */
    warnings: jsonb('warnings').$type<string[]>(),
  },
  (t) => [uniqueIndex('bundles_cluster_generation').on(t.cluster, t.generation)],
);

/**
 * Each cluster's age recipient (`age1…`, public): SOPS files for its environment are
 * encrypted to it. Registered by the agent at join and again with each credential rotation;
 * the identity that opens them never leaves the cluster.
 */
export const ageRecipients = pgTable('age_recipients', {
  cluster: text('cluster').primaryKey(),
  recipient: text('recipient').notNull(),
  registeredAt: at('registered_at').notNull().defaultNow(),
});

/**
 * Clusters a publish pass found changed, waiting to be rendered and published by any hub
 * replica (PostgreSQL only). A replica claims rows with `FOR UPDATE SKIP LOCKED` and deletes
 * them in the same transaction once published; a replica that dies mid-pass releases its
 * claim with its session, so another one takes the rows over.
 */
export const syncWork = pgTable('sync_work', {
  cluster: text('cluster').primaryKey(),
  /** The pass that asked for it (the leader's clock in ms); a later pass replaces the row. */
  pass: bigint('pass', { mode: 'number' }).notNull(),
  /** The environment as flotilla.yaml declared it in that pass. */
  environment: jsonb('environment').notNull(),
  branch: text('branch').notNull(),
  commit: text('commit').notNull(),
  enqueuedAt: at('enqueued_at').notNull().defaultNow(),
});

/**
 * Render outcome per scope: `config` (flotilla.yaml), `env:<name>` or `cluster:<name>`.
 * A failing scope keeps its last good revision; the error is shown on its clusters.
 */
export const renderState = pgTable('render_state', {
  scope: text('scope').primaryKey(),
  lastGoodRevision: text('last_good_revision'),
  lastError: text('last_error'),
  errorAt: at('error_at'),
  updatedAt: at('updated_at').notNull().defaultNow(),
});

/** Every report an agent sent, idempotent by (cluster, seq). */
export const statusReports = pgTable(
  'status_reports',
  {
    id: serial('id').primaryKey(),
    cluster: text('cluster').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    kind: text('kind').notNull(),
    observedAt: at('observed_at'),
    receivedAt: at('received_at').notNull().defaultNow(),
    /** `stream` or `import` (air-gapped file). */
    via: text('via').notNull(),
    body: jsonb('body').notNull(),
  },
  (t) => [uniqueIndex('status_reports_cluster_seq').on(t.cluster, t.seq)],
);

/** The latest known state of each cluster, from its newest report. */
export const clusterStatus = pgTable('cluster_status', {
  cluster: text('cluster').primaryKey(),
  appliedGeneration: integer('applied_generation'),
  revision: text('revision'),
  bundleDigest: text('bundle_digest'),
  phase: text('phase'),
  health: text('health'),
  applyError: text('apply_error'),
  pendingGeneration: integer('pending_generation'),
  refusal: text('refusal'),
  refusedGeneration: integer('refused_generation'),
  refusedAt: at('refused_at'),
  /** When the newest status report was observed by the agent. */
  reportedAt: at('reported_at'),
  /** `stream` or `import`: an imported status is marked as such. */
  reportedVia: text('reported_via'),
  lastSeen: at('last_seen'),
  lastSeq: bigint('last_seq', { mode: 'number' }),
  /** Since when the cluster has been Synced and Healthy at `revision` (the soak clock); null if it is not. */
  healthySince: at('healthy_since'),
  /** Why the agent holds `pendingGeneration` (manual sync, maintenance window), and until when if it knows. */
  pendingReason: text('pending_reason'),
  pendingUntil: at('pending_until'),
});

/** Per-resource status of the newest report. */
export const resourceStatus = pgTable(
  'resource_status',
  {
    cluster: text('cluster').notNull(),
    group: text('group').notNull(),
    version: text('version').notNull(),
    kind: text('kind').notNull(),
    namespace: text('namespace').notNull(),
    name: text('name').notNull(),
    sync: text('sync').notNull(),
    health: text('health').notNull(),
    healthReason: text('health_reason'),
    error: text('error'),
  },
  (t) => [primaryKey({ columns: [t.cluster, t.group, t.kind, t.namespace, t.name] })],
);

/** Drift events: open while cleared_at is null, kept as history once cleared. */
export const drift = pgTable(
  'drift',
  {
    id: serial('id').primaryKey(),
    cluster: text('cluster').notNull(),
    group: text('group').notNull(),
    version: text('version').notNull(),
    kind: text('kind').notNull(),
    namespace: text('namespace').notNull(),
    name: text('name').notNull(),
    field: text('field').notNull(),
    desired: text('desired').notNull(),
    live: text('live').notNull(),
    since: at('since').notNull(),
    clearedAt: at('cleared_at'),
  },
  (t) => [index('drift_cluster_open').on(t.cluster, t.clearedAt)],
);

/** Who did what to which cluster, and whether it was allowed. */
export const auditLog = pgTable('audit_log', {
  id: serial('id').primaryKey(),
  at: at('at').notNull().defaultNow(),
  action: text('action').notNull(),
  actor: text('actor').notNull(),
  cluster: text('cluster'),
  outcome: text('outcome').notNull(),
  detail: text('detail'),
});

/** Promotions and rollbacks, as git commits the hub made. */
export const promotions = pgTable('promotions', {
  id: serial('id').primaryKey(),
  at: at('at').notNull().defaultNow(),
  who: text('who').notNull(),
  fromEnv: text('from_env').notNull(),
  toEnv: text('to_env').notNull(),
  fromRevision: text('from_revision').notNull(),
  commit: text('commit').notNull(),
  kind: text('kind').$type<'promote' | 'rollback'>().notNull(),
  /** TO's branch was moved to FROM's commit rather than given a new commit. */
  fastForward: boolean('fast_forward').notNull().default(false),
  /** TO's branch head before this change (null when the promotion created the branch). */
  previousHead: text('previous_head'),
  /** For a rollback: the id of the promotion it undid. */
  undoes: integer('undoes'),
  /** Into an environment that requires approval: who approved it (never `who`: four eyes). */
  approvedBy: text('approved_by'),
});

/**
 * Promotions into an environment with `promotion: {approve: true}`, asked for and waiting for
 * an approval by another identity. At most one waits per FROM → TO; a newer request supersedes it.
 */
export const promotionRequests = pgTable(
  'promotion_requests',
  {
    id: serial('id').primaryKey(),
    fromEnv: text('from_env').notNull(),
    toEnv: text('to_env').notNull(),
    /** The FROM revision the gates verified when it was asked for: what an approval promotes. */
    revision: text('revision').notNull(),
    requestedBy: text('requested_by').notNull(),
    requestedAt: at('requested_at').notNull().defaultNow(),
    state: text('state').$type<'pending' | 'approved' | 'superseded'>().notNull().default('pending'),
    decidedBy: text('decided_by'),
    decidedAt: at('decided_at'),
    /** The promotion an approval made. */
    promotionId: integer('promotion_id'),
  },
  (t) => [uniqueIndex('promotion_requests_pending').on(t.fromEnv, t.toEnv).where(sql`state = 'pending'`)],
);

/** A manual sync asked for and not yet delivered on the cluster's status stream. */
export const pendingSyncs = pgTable('pending_syncs', {
  cluster: text('cluster').primaryKey(),
  generation: integer('generation').notNull(),
  requestedAt: at('requested_at').notNull().defaultNow(),
  sentAt: at('sent_at'),
});

/**
 * Paused clusters and environments (`cluster:<name>` or `env:<name>`): a paused cluster keeps
 * enforcing its bundle but is given no new one, and promotion gates leave it out.
 */
export const pauses = pgTable('pauses', {
  scope: text('scope').primaryKey(),
  reason: text('reason'),
  actor: text('actor').notNull(),
  at: at('at').notNull().defaultNow(),
});

/**
 * The rollout of each environment with waves: what it rolls out (a key of the environment's
 * content and config), how far it got, and whether it halted. Written by the leading replica only.
 */
export const rollouts = pgTable('rollouts', {
  environment: text('environment').primaryKey(),
  key: text('key').notNull(),
  commit: text('commit').notNull(),
  /** Index of the newest wave released. */
  wave: integer('wave').notNull(),
  /** When that wave was released. */
  waveAt: at('wave_at').notNull(),
  /** Clusters given the rollout's bundle so far (the current wave's may come a few at a time). */
  released: jsonb('released').$type<string[]>().notNull().default([]),
  halted: jsonb('halted').$type<{ cluster: string; reason: string; at: string } | null>(),
  startedAt: at('started_at').notNull().defaultNow(),
  updatedAt: at('updated_at').notNull().defaultNow(),
});

/** Why a cluster's newest render was not published (waiting for a wave, or its blast radius). */
export const clusterHolds = pgTable('cluster_holds', {
  cluster: text('cluster').primaryKey(),
  kind: text('kind').$type<'wave' | 'blast-radius'>().notNull(),
  reason: text('reason').notNull(),
  /** For a blast-radius hold: the content digest of the held render, which an approval names. */
  digest: text('digest'),
  since: at('since').notNull().defaultNow(),
});

/** Renders allowed to prune past the blast-radius threshold, by content digest. */
export const pruneApprovals = pgTable(
  'prune_approvals',
  {
    cluster: text('cluster').notNull(),
    digest: text('digest').notNull(),
    actor: text('actor').notNull(),
    at: at('at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.cluster, t.digest] })],
);

/** Webhook deliveries: one row per receiver and event key (the dedupe), retried with backoff. */
export const notifications = pgTable(
  'notifications',
  {
    id: serial('id').primaryKey(),
    receiver: text('receiver').notNull(),
    key: text('key').notNull(),
    event: jsonb('event').notNull(),
    state: text('state').$type<'pending' | 'delivered' | 'failed'>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAt: at('next_at').notNull().defaultNow(),
    lastError: text('last_error'),
    createdAt: at('created_at').notNull().defaultNow(),
    deliveredAt: at('delivered_at'),
  },
  (t) => [
    uniqueIndex('notifications_receiver_key').on(t.receiver, t.key),
    index('notifications_due').on(t.state, t.nextAt),
  ],
);

/**
 * The digest each chart (repository, name, version) had when the hub first fetched it: a
 * chart that changes under the same version is refused, by every replica.
 */
export const chartPins = pgTable('chart_pins', {
  /** `REPOSITORY|CHART|VERSION`; the repository URL never holds credentials. */
  ref: text('ref').primaryKey(),
  /** `sha256:…` of the packaged chart. */
  digest: text('digest').notNull(),
  pinnedAt: at('pinned_at').notNull().defaultNow(),
});

/**
 * API tokens of people and machines (`flotilla token create`), stored only as sha256 hashes.
 * A name is unique among tokens not revoked; revoked rows stay for the record.
 */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    role: text('role').$type<'viewer' | 'deployer' | 'approver' | 'admin'>().notNull(),
    /** The environments its scoped permissions apply to; empty for every environment. */
    environments: jsonb('environments').$type<string[]>().notNull().default([]),
    tokenHash: text('token_hash').notNull().unique(),
    createdBy: text('created_by').notNull(),
    createdAt: at('created_at').notNull().defaultNow(),
    expiresAt: at('expires_at').notNull(),
    revokedAt: at('revoked_at'),
    lastUsedAt: at('last_used_at'),
  },
  (t) => [uniqueIndex('api_tokens_live_name').on(t.name).where(sql`revoked_at is null`)],
);
