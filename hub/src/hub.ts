import { join, resolve } from 'node:path';
import {
  type Bundle,
  decodeEnvelope,
  errorMessage,
  FlotillaError,
  type KubeObject,
  type Logger,
  secretHashKey,
  sha256Digest,
} from '@flotilla/shared';
import { createAccess, createOidcBearer, createTokenStore, oidcRoutes, tokenRoutes } from './access/index.js';
import type { Route } from './api/router.js';
import { adminRoutes } from './api/routes.js';
import { type ApiServer, startApiServer } from './api/server.js';
import { type ApplyRequests, createApplyRequests } from './apply-request/apply-request.js';
import { type AuditLog, createAuditLog } from './audit/audit.js';
import { type BundlePublisher, createBundlePublisher } from './bundles/publish-cluster.js';
import { type ChartCredential, createChartStore } from './charts/chart-store.js';
import {
  type ClusterService,
  createClusterService,
  DEFAULT_CREDENTIAL_TTL_MS,
} from './clusters/cluster-service.js';
import { loadFleetConfig } from './config/index.js';
import {
  appliedBundle,
  createOidcLogin,
  createPipelineView,
  createSessions,
  dashboardRoutes,
  type OidcOptions,
} from './dashboard/index.js';
import { type Database, openDatabase } from './db/database.js';
import { type LeaderElection, startLeaderElection } from './db/leader.js';
import { createAgentStreams } from './grpc/agent-streams.js';
import { type GrpcServer, startGrpcServer } from './grpc/server.js';
import { registerFleetMetrics } from './metrics/fleet-metrics.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { type BundleBus, createBundleBus, DEFAULT_BUNDLE_REPLICAS, MAX_BUNDLE_REPLICAS } from './nats/bus.js';
import { createNotifier, fleetEvents, type Notifier, type Receiver } from './notify/index.js';
import { type HubIdentity, initDataDir } from './pki/init.js';
import { createSigningKeyStore } from './pki/signing-keys.js';
import {
  createPromotionService,
  PromotionRefusedError,
  type PromotionService,
  promotionRoutes,
} from './promotion/index.js';
import { createPromotionLog, type PromotionLog } from './promotion/promotion-log.js';
import { createPublishLoop, type PublishLoop, type PublishPass } from './publish-loop/publish-loop.js';
import { createWorkQueue, type WorkQueue } from './publish-loop/work-queue.js';
import { createRenderer, type Renderer } from './render/index.js';
import {
  createPauses,
  createRolloutService,
  type Pauses,
  type RolloutService,
  rolloutRoutes,
} from './rollout/index.js';
import { createRecipientStore, createSecretValues, secretRoutes } from './secrets/index.js';
import { createGitSource, type GitSource } from './source/index.js';
import { createFleetView, type FleetView } from './status/fleet-view.js';
import { createStatusImporter } from './status/import.js';
import { createStatusIngest, type StatusIngest } from './status/ingest.js';
import { type WebhookOptions, webhookRoutes } from './webhooks/index.js';

/** How to run a hub. Defaults are applied in parseHubOptions only. */
export interface HubOptions {
  /** Keys, TLS, admin token hash, NATS keys, PGlite and git cache. Default `.flotilla/hub`. */
  dataDir?: string;
  /**
   * Where the git cache and render scratch live; default the data dir. Replicas sharing one
   * data dir (a ReadWriteMany volume) each need a cache dir of their own.
   */
  cacheDir?: string;
  /** NATS URL(s) the hub publishes to. */
  nats: string | string[];
  /**
   * Copies of the BUNDLES stream (JetStream `num_replicas`, 1 to 5); default 1. 3 with a
   * three-node NATS cluster, so bundles survive a node's loss. Changing it scales the stream.
   */
  bundleReplicas?: number;
  /** NATS URL(s) handed to agents at Register; default the hub's. */
  agentNats?: string[];
  repo: { url: string; username?: string; password?: string; token?: string };
  /** `postgres://…` uses PostgreSQL; otherwise PGlite in the data dir. */
  database?: string;
  /** Admin HTTP API listen address. Default `127.0.0.1:8080`. */
  http?: string;
  /** Serve the admin API (and the dashboard) over HTTPS with the hub's server certificate. */
  httpTls?: boolean;
  /** gRPC (agents) listen address. Default `127.0.0.1:7443`. */
  grpc?: string;
  /** `HOST:PORT` put in join commands; default the bound gRPC address. */
  advertise?: string;
  /** Extra SANs for the gRPC server certificate. */
  tlsSans?: string[];
  /** Poll interval in ms; default 30 s. 0 disables polling. */
  pollMs?: number;
  /** A cluster silent longer than this (ms) is disconnected; default 30 s. */
  heartbeatWindowMs?: number;
  /** Lifetime of an agent credential (ms); default 90 days. Agents rotate after a third of it. */
  agentCredentialTtlMs?: number;
  /** Credentials of private Helm repositories and OCI registries, by URL prefix; never logged. */
  chartCredentials?: ChartCredential[];
  logger: Logger;
  /** Webhook receivers told of promotions, halts, Degraded or disconnected clusters, drift and render errors. */
  notify?: { receivers: Receiver[] };
  /**
   * Offline recovery recipients (`age1…`): every SOPS file `flotilla secret encrypt` writes is
   * encrypted to them too, so that whoever holds their identities (off the hub) can rekey.
   */
  ageRecoveryRecipients?: string[];
  /** The git webhook: its secret (GitHub, GitLab, Gitea/Forgejo signatures) and rate limit. */
  webhook?: WebhookOptions;
  /** Single sign-on for the dashboard: the OIDC provider and the groups that get roles. */
  oidc?: OidcOptions;
  /** Routes added next to the core ones (promotion, environments…). */
  extraRoutes?: (hub: HubServices) => Route[];
}

export type ResolvedHubOptions = Required<
  Omit<
    HubOptions,
    | 'database'
    | 'advertise'
    | 'extraRoutes'
    | 'notify'
    | 'ageRecoveryRecipients'
    | 'chartCredentials'
    | 'webhook'
    | 'oidc'
  >
> &
  Pick<
    HubOptions,
    'database' | 'advertise' | 'extraRoutes' | 'notify' | 'chartCredentials' | 'webhook' | 'oidc'
  > & {
    nats: string[];
    ageRecoveryRecipients: string[];
  };

export const HUB_DEFAULTS = {
  dataDir: '.flotilla/hub',
  http: '127.0.0.1:8080',
  grpc: '127.0.0.1:7443',
  pollMs: 30_000,
  heartbeatWindowMs: 30_000,
  bundleReplicas: DEFAULT_BUNDLE_REPLICAS,
} as const;

export function parseHubOptions(options: HubOptions): ResolvedHubOptions {
  const nats = Array.isArray(options.nats) ? options.nats : [options.nats];
  const bundleReplicas = options.bundleReplicas ?? HUB_DEFAULTS.bundleReplicas;
  if (!Number.isInteger(bundleReplicas) || bundleReplicas < 1 || bundleReplicas > MAX_BUNDLE_REPLICAS) {
    throw new FlotillaError(
      'invalid',
      `hub options: bundleReplicas: ${bundleReplicas} is not a whole number from 1 to ${MAX_BUNDLE_REPLICAS}`,
    );
  }
  return {
    ...options,
    dataDir: resolve(options.dataDir ?? HUB_DEFAULTS.dataDir),
    cacheDir: resolve(options.cacheDir ?? options.dataDir ?? HUB_DEFAULTS.dataDir),
    nats,
    bundleReplicas,
    agentNats: options.agentNats?.length ? options.agentNats : nats,
    http: options.http ?? HUB_DEFAULTS.http,
    httpTls: options.httpTls ?? false,
    grpc: options.grpc ?? HUB_DEFAULTS.grpc,
    tlsSans: options.tlsSans ?? [],
    pollMs: options.pollMs ?? HUB_DEFAULTS.pollMs,
    heartbeatWindowMs: options.heartbeatWindowMs ?? HUB_DEFAULTS.heartbeatWindowMs,
    agentCredentialTtlMs: options.agentCredentialTtlMs ?? DEFAULT_CREDENTIAL_TTL_MS,
    ageRecoveryRecipients: options.ageRecoveryRecipients ?? [],
  };
}

/** The running hub's services, for wiring extra features (promotion gates, journeys) on top. */
export interface HubServices {
  options: ResolvedHubOptions;
  identity: HubIdentity;
  database: Database;
  audit: AuditLog;
  source: GitSource;
  renderer: Renderer;
  bus: BundleBus;
  publisher: BundlePublisher;
  clusters: ClusterService;
  ingest: StatusIngest;
  fleet: FleetView;
  applyRequests: ApplyRequests;
  publishLoop: PublishLoop;
  promotions: PromotionLog;
  promotion: PromotionService;
  pauses: Pauses;
  rollout: RolloutService;
  notifier: Notifier;
  metrics: Metrics;
  logger: Logger;
}

export interface Hub extends HubServices {
  httpUrl: string;
  grpcAddress: string;
  caHash: string;
  stop(): Promise<void>;
}

/**
 * Starts a hub: data dir, database (migrated), NATS, git source, renderer, reconcile loop,
 * gRPC for agents and the admin HTTP API. Everything it starts, stop() stops, in reverse.
 */
export async function startHub(input: HubOptions): Promise<Hub> {
  const options = parseHubOptions(input);
  const { logger } = options;
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse())
      await stop().catch((err) => logger.warn({ err: errorMessage(err) }, 'stop failed'));
  };
  try {
    const identity = await initDataDir(options.dataDir, { tlsSans: options.tlsSans });
    const keys = createSigningKeyStore(options.dataDir);
    const database = await openDatabase(
      options.database ? { url: options.database } : { pgliteDir: join(options.dataDir, 'pglite') },
    );
    stops.push(() => database.close());
    const db = database.db;
    const metrics = createMetrics();
    const audit = createAuditLog(db);
    const bus = await createBundleBus({
      servers: options.nats,
      identity: identity.nats,
      replicas: options.bundleReplicas,
      logger,
    });
    stops.push(() => bus.close());
    const source = createGitSource({
      url: options.repo.url,
      auth: {
        ...(options.repo.username ? { username: options.repo.username } : {}),
        ...(options.repo.password ? { password: options.repo.password } : {}),
        ...(options.repo.token ? { token: options.repo.token } : {}),
      },
      cacheDir: join(options.cacheDir, 'git'),
      logger,
    });
    // Charts from repositories and registries: fetched and pinned here, rendered offline.
    const charts = createChartStore({
      db,
      cacheDir: join(options.cacheDir, 'charts'),
      ...(options.chartCredentials ? { credentials: options.chartCredentials } : {}),
      logger,
    });
    const renderer = createRenderer({ source, workDir: join(options.cacheDir, 'render'), logger, charts });
    const publisher = createBundlePublisher({
      db,
      bus: {
        ...bus,
        publish: async (c, g, e, o) => {
          await bus.publish(c, g, e, o);
          metrics.inc('flotilla_bundles_published_total');
        },
      },
      signingKeys: () => keys.ring(),
      sourceUrl: source.url,
      logger,
    });
    const fleet = createFleetView({ db, heartbeatWindowMs: options.heartbeatWindowMs });
    let election: LeaderElection | undefined;
    const isLeader = () => election?.isLeader() ?? true;
    const notifier = createNotifier({
      db,
      receivers: options.notify?.receivers ?? [],
      logger,
      active: isLeader,
    });
    notifier.start();
    stops.push(() => notifier.stop());
    /** The fleet config of the newest good pass; a follower replica runs no passes and reads flotilla.yaml itself. */
    const fleetConfig = async () => {
      const own = publishLoop.config();
      if (own) return own;
      try {
        await source.fetch();
        return await loadFleetConfig(source, await source.resolveBranch(await source.defaultBranch()));
      } catch {
        return undefined;
      }
    };
    const pauses = createPauses({ db, audit, onChange: () => void sync.trigger('pause or resume') });
    const rollout = createRolloutService({
      db,
      source,
      fleet,
      pauses,
      audit,
      logger,
      config: fleetConfig,
      async previousObjects(names) {
        const objects = new Map<string, readonly KubeObject[]>();
        for (const [cluster, latest] of await publisher.latestOf(names)) {
          const payload = Buffer.from(decodeEnvelope(latest.envelope).payload, 'base64');
          objects.set(cluster, (JSON.parse(payload.toString('utf8')) as Bundle).objects);
        }
        return objects;
      },
      trigger: (reason) => sync.trigger(reason),
      isLeader,
      onEvent(environment, event, record) {
        if (event.kind === 'halted')
          notifier.emit({
            kind: 'rollout.halted',
            key: `${environment}:${record.key}:${record.wave}`,
            summary: `rollout of ${environment} at ${record.commit.slice(0, 12)} halted at wave ${record.wave + 1}: ${event.reason}`,
            environment,
            cluster: event.cluster,
            details: { commit: record.commit, wave: record.wave + 1 },
          });
      },
    });
    let queue: WorkQueue | undefined;
    const publishLoop = createPublishLoop({
      gate: rollout.gate,
      db,
      source,
      renderer,
      publisher,
      logger,
      pollMs: options.pollMs,
      // Replicas on PostgreSQL share each pass's render, sign and publish work.
      ...(database.kind === 'postgres' && database.url
        ? {
            queue: (publishing) => {
              queue = createWorkQueue({ db, url: database.url!, source, publisher, publishing, logger });
              return queue;
            },
          }
        : {}),
      onPass: (pass) => {
        metrics.inc('flotilla_sync_passes_total', { outcome: pass.error ? 'failed' : 'ok' });
        const renderErrors = [
          ...(pass.error ? [{ cluster: undefined, error: pass.error }] : []),
          ...pass.clusters.flatMap((c) => ('error' in c ? [{ cluster: c.cluster, error: c.error }] : [])),
        ];
        for (const r of renderErrors)
          notifier.emit({
            kind: 'render.error',
            key: `${r.cluster ?? 'config'}:${sha256Digest(r.error)}`,
            summary: r.cluster ? `cluster ${r.cluster}: ${r.error}` : r.error,
            ...(r.cluster ? { cluster: r.cluster } : {}),
          });
        const failed = pass.clusters.filter((c) => 'error' in c).length;
        if (failed > 0) metrics.inc('flotilla_render_errors_total', {}, failed);
      },
    });
    stops.push(() => publishLoop.stop());
    rollout.start();
    stops.push(() => rollout.stop());
    if (queue) {
      const q = queue;
      await q.start();
      stops.push(() => q.stop());
    }
    /** A pass asked for here (webhook, new cluster, promotion, API): run by the leading replica. */
    const sync = {
      async trigger(reason: string): Promise<PublishPass> {
        if (!election || election.isLeader()) return publishLoop.trigger(reason);
        // Never rejects, like the loop's own trigger: callers fire and forget (webhooks).
        const error = await election.requestPass(reason).then(
          () => null,
          (err) => `handing the pass to the leader failed: ${errorMessage(err)}`,
        );
        if (error) logger.warn({ reason, err: error }, 'publish pass not run');
        return { revision: null, error, clusters: [], runBy: 'leader' };
      },
    };
    const streams = createAgentStreams();
    const ingest = createStatusIngest(db, {
      onBatchFailed: (err, reports) =>
        logger.warn(
          { err: errorMessage(err), reports },
          'status ingest batch failed: retrying its reports one by one',
        ),
    });
    const applyRequests = createApplyRequests({ db, audit, send: (c, g) => streams.sendSync(c, g) });
    let grpcAddress = options.advertise ?? options.grpc;
    const clusters = createClusterService({
      db,
      audit,
      logger,
      nats: {
        identity: identity.nats,
        dataDir: options.dataDir,
        agentServers: options.agentNats,
        updateAccount: (jwt) => bus.updateAccount(jwt),
        forget: (cluster) => bus.forget(cluster),
      },
      signingKeys: () => keys.ring(),
      grpcAddress: () => grpcAddress,
      caHash: identity.tls.caHash,
      onAdded: () => void sync.trigger('cluster added'),
      // New labels or another environment: its groups and apps are chosen again, at once.
      onChanged: () => void sync.trigger('cluster changed'),
      environments: () => publishLoop.config()?.environments.map((e) => e.name),
      onRemoved: (name) => streams.revoke(name),
      credentialTtlMs: options.agentCredentialTtlMs,
    });
    const statusImport = createStatusImporter({ db, ingest, audit, agentKeys: (c) => clusters.agentKeys(c) });
    metrics.gauge('flotilla_clusters', 'Registered clusters, by connection state.', async () => {
      const list = await fleet.clusters();
      return [
        { labels: { connected: 'true' }, value: list.filter((c) => c.connected).length },
        { labels: { connected: 'false' }, value: list.filter((c) => !c.connected).length },
      ];
    });
    registerFleetMetrics(metrics, fleet);

    const recipients = createRecipientStore({ db, recovery: options.ageRecoveryRecipients, logger });
    const grpc: GrpcServer = await startGrpcServer({
      listen: options.grpc,
      tls: identity.tls,
      clusters,
      recipients,
      ingest,
      streams,
      applyRequests,
      logger,
      // Three heartbeats per window: one lost or late heartbeat never shows a cluster disconnected.
      heartbeatSeconds: Math.max(1, Math.floor(options.heartbeatWindowMs / 3000)),
      onReport: (outcome) => metrics.inc('flotilla_status_reports_total', { outcome }),
    });
    stops.push(() => grpc.close());
    grpcAddress = options.advertise ?? grpc.address;

    const promotions = createPromotionLog(db);
    // Secret values in env diffs and object diffs show as an HMAC under a key only the hub holds.
    const secretValues = createSecretValues(secretHashKey(identity.tls.keyPem));
    const promotionCore = createPromotionService({
      source,
      fleet,
      log: promotions,
      audit,
      sync,
      logger,
      secretValues,
    });
    const promotion = notifyingPromotions(promotionCore, notifier);
    if ((options.notify?.receivers.length ?? 0) > 0) {
      const watch = setInterval(() => {
        if (!isLeader()) return;
        void Promise.all([fleet.status(), fleet.drift()])
          .then(([rows, drift]) => fleetEvents(notifier, rows, drift))
          .catch((err) => logger.warn({ err: errorMessage(err) }, 'notifications: fleet read failed'));
      }, 2000);
      watch.unref();
      stops.push(async () => clearInterval(watch));
    }
    const services: HubServices = {
      options,
      identity,
      database,
      audit,
      source,
      renderer,
      bus,
      publisher,
      clusters,
      ingest,
      fleet,
      applyRequests,
      publishLoop,
      promotions,
      promotion,
      pauses,
      rollout,
      notifier,
      metrics,
      logger,
    };
    election = await startLeaderElection({
      database,
      logger,
      onElected: () => publishLoop.start(),
      onDeposed: () => void publishLoop.pause(),
      onPassRequested: (reason) => void publishLoop.trigger(reason),
    });
    stops.push(() => election!.stop());
    metrics.gauge(
      'flotilla_hub_leader',
      'Whether this replica renders and publishes (1) or follows (0).',
      async () => [{ value: election?.isLeader() ? 1 : 0 }],
    );
    if (!options.webhook?.secret)
      logger.warn(
        'the git webhook takes unsigned calls (no webhook secret): set one with --webhook-secret-file or FLOTILLA_WEBHOOK_SECRET',
      );
    const tokens = createTokenStore({ db, audit });
    const access = createAccess({
      bootstrapTokenHash: identity.adminTokenHash,
      tokens,
      audit,
      ...(options.oidc ? { oidc: createOidcBearer(options.oidc) } : {}),
    });
    const routes = [
      ...tokenRoutes(tokens),
      ...oidcRoutes(options.oidc),
      ...adminRoutes({
        clusters,
        fleet,
        applyRequests,
        bundles: publisher,
        statusImport,
        audit,
        sync,
        async rotateKey() {
          const ring = keys.rotate();
          return { keyId: ring.current.keyId, keys: ring.all.map((k) => k.keyId) };
        },
      }),
      ...webhookRoutes({ options: options.webhook ?? {}, audit, trigger: (reason) => sync.trigger(reason) }),
      ...promotionRoutes(promotion),
      ...rolloutRoutes({
        rollout,
        pauses,
        clusterEnvironment: async (name) => (await clusters.get(name))?.environment,
      }),
      {
        method: 'GET',
        path: '/api/v1/notifications',
        permission: 'read',
        handle: async (req) => ({
          json: { deliveries: await notifier.history(Math.min(Number(req.query.get('limit')) || 200, 5000)) },
        }),
      } satisfies Route,
      ...secretRoutes(recipients),
      ...dashboardRoutes({
        secretValues,
        fleet,
        promotions: promotion,
        audit,
        access,
        sessions: createSessions(),
        rollouts: rollout,
        pipeline: createPipelineView({
          config: fleetConfig,
          fleet,
          promotions: promotion,
          source,
          pendingApprovals: async () =>
            (await promotion.pending()).map((p) => ({
              id: p.id,
              from: p.from,
              to: p.to,
              requestedBy: p.requestedBy,
              at: p.requestedAt,
            })),
        }),
        bundles: { applied: (cluster) => appliedBundle(db, cluster) },
        actions: { promotion, applyRequests, pauses },
        ...(options.oidc ? { oidc: createOidcLogin(options.oidc) } : {}),
      }),
      ...(options.extraRoutes?.(services) ?? []),
    ];
    const api: ApiServer = await startApiServer({
      listen: options.http,
      ...(options.httpTls ? { tls: { certPem: identity.tls.chainPem, keyPem: identity.tls.keyPem } } : {}),
      access,
      health: () => ({ leader: election?.isLeader() ?? false }),
      routes,
      metrics,
      logger,
    });
    stops.push(() => api.close());
    return {
      ...services,
      httpUrl: api.url,
      grpcAddress: grpc.address,
      caHash: identity.tls.caHash,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Tells receivers of every promotion made (and approved) or refused, without changing what promote does. */
function notifyingPromotions(service: PromotionService, notifier: Notifier): PromotionService {
  const notifying =
    (run: PromotionService['promote'], approval: boolean): PromotionService['promote'] =>
    async (request) => {
      try {
        const result = await run(request);
        if (result.changed && result.record) {
          const by = result.record.actor;
          const event = {
            key: result.commit,
            summary: `${by} promoted ${result.from}@${result.fromRevision.slice(0, 12)} → ${result.to} as ${result.commit.slice(0, 12)}${result.notes.length ? ` (${result.notes.join('; ')})` : ''}`,
            environment: result.to,
            details: {
              from: result.from,
              to: result.to,
              revision: result.fromRevision,
              commit: result.commit,
              actor: by,
              ...(result.record.approvedBy ? { approvedBy: result.record.approvedBy } : {}),
            },
          };
          notifier.emit({ kind: 'promotion.made', ...event });
          if (approval)
            notifier.emit({
              kind: 'promotion.approved',
              ...event,
              summary: `${request.actor} approved: ${event.summary}`,
            });
        }
        return result;
      } catch (err) {
        if (err instanceof PromotionRefusedError)
          notifier.emit({
            kind: 'promotion.refused',
            key: `${request.from}:${request.to}:${sha256Digest(err.reasons.join('\n'))}`,
            summary: err.message,
            environment: request.to,
            details: { from: request.from, to: request.to, reasons: err.reasons, actor: request.actor },
          });
        throw err;
      }
    };
  return {
    ...service,
    promote: notifying((r) => service.promote(r), false),
    approve: notifying((r) => service.approve(r), true),
  };
}
