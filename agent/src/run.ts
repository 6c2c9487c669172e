import { unwatchFile, watchFile } from 'node:fs';
import { createLogger, errorMessage, type Logger, sha256Digest } from '@flotilla/shared';
import { type Agent, createAgent } from './agent.js';
import type { AgentHealth } from './health/agent-health.js';
import { hubChannelCredentials } from './hub-tls.js';
import { createOutbox, type Outbox, seqFloorNow } from './outbox.js';
import { type BundlePuller, startBundlePuller } from './pull.js';
import type { Reconciler } from './reconcile/index.js';
import {
  type AgentIdentity,
  type BundleStore,
  createBundleStore,
  credentialRotationDue,
  identityTrustedKeys,
  lockStateDir,
} from './state.js';
import { type StatusClient, startStatusClient } from './status-client.js';

export interface RunOptions {
  identity: AgentIdentity;
  /** Keeps the identity after a credential rotation (its file or Secret); without it, no rotation. */
  saveIdentity?: (identity: AgentIdentity) => Promise<void>;
  /** Holds the outbox and the last good bundle; taken exclusively while running. */
  stateDir: string;
  reconciler: Reconciler;
  logger?: Logger;
  heartbeatMs?: number;
  /** A self-heal this long after the previous one starts the backoff again; default 60 s. */
  healResetMs?: number;
  /** The clock maintenance windows are read against, and how often a held bundle is looked at again. */
  now?: () => Date;
  windowCheckMs?: number;
  outboxCap?: number;
  /** How often the last-bundle file is checked for an `import` by another process; default 2 s. */
  importPollMs?: number;
  /** Reconnect backoff base for NATS and the hub; defaults 2 s and 1 s. */
  natsRetryMs?: number;
  hubRetryMs?: number;
  /**
   * A leaf node site: the agent connects to these NATS servers (the site's leaf server)
   * instead of the ones the hub handed out at join, and reaches the bundle stream in the
   * hub's JetStream domain.
   */
  nats?: { servers?: string[]; jsDomain?: string };
  /**
   * The health endpoints' view of this agent (`--metrics-addr`): each loop reports its progress
   * to it, and its metrics read the agent, the outbox and the identity.
   */
  health?: AgentHealth;
}

/** A running agent process: the run loop with its bundle source and status sink attached. */
export interface RunningAgent {
  agent: Agent;
  outbox: Outbox;
  puller: BundlePuller;
  status: StatusClient;
  /** Settles once the stored bundle (if any) has been enforced the first time. */
  started: Promise<void>;
  /** Stops everything and flushes the outbox; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Wires the run loop to the world: enforces the stored bundle first (no network needed),
 * then pulls from NATS and streams status to the hub, both in the background and both
 * reconnecting on their own, so an agent cut off from hub and NATS keeps enforcing,
 * healing and queueing status.
 */
export async function runAgent(options: RunOptions): Promise<RunningAgent> {
  const log = options.logger ?? createLogger({ name: 'agent', level: 'silent' });
  const { identity } = options;
  /** The identity as it is now: a credential rotation replaces it. */
  let current = identity;
  const lock = lockStateDir(options.stateDir);
  const outbox = createOutbox({
    dir: options.stateDir,
    cap: options.outboxCap,
    logger: log,
    seqFloor: seqFloorNow(),
  });
  const fileStore = createBundleStore(options.stateDir);
  /**
   * Digest of the bytes this process last wrote to the last-bundle file. The import watch below
   * sees the agent's own write of each bundle it applies; offering those bytes back would only
   * verify the bundle a second time to find it unchanged.
   */
  let ownWrite: string | undefined;
  const bundleStore: BundleStore = {
    path: fileStore.path,
    read: () => fileStore.read(),
    write(envelope) {
      fileStore.write(envelope);
      ownWrite = sha256Digest(envelope);
    },
  };
  let puller: BundlePuller | undefined;
  const { health } = options;
  const agent = createAgent({
    cluster: identity.cluster,
    keys: identityTrustedKeys(identity),
    reconciler: health ? health.instrument(options.reconciler) : options.reconciler,
    outbox,
    bundleStore,
    logger: log,
    heartbeatMs: options.heartbeatMs,
    healResetMs: options.healResetMs,
    ...(options.now ? { now: options.now } : {}),
    ...(options.windowCheckMs ? { windowCheckMs: options.windowCheckMs } : {}),
    onRefreshWanted: () => puller?.refresh(),
    ...(health ? { onHealScheduled: health.healScheduled } : {}),
  });
  health?.attach({
    snapshot: () => agent.snapshot(),
    pendingReports: () => outbox.pending(),
    credentialExpiresAt: () => current.credentialExpiresAt,
  });
  log.info({ cluster: identity.cluster, stateDir: options.stateDir }, 'agent starting');
  // Enforcement of the stored bundle starts first and needs no connection; the
  // connections below do not wait for it (a slow API server must not keep the hub blind),
  // and bundles they bring queue behind it.
  const started = agent
    .start()
    .catch((err) => log.error({ err: errorMessage(err) }, 'enforcing the stored bundle failed'));

  puller = startBundlePuller(
    {
      cluster: identity.cluster,
      servers: options.nats?.servers?.length ? options.nats.servers : identity.nats.servers,
      ...(options.nats?.jsDomain ? { jsDomain: options.nats.jsDomain } : {}),
      ...(identity.nats.jwt
        ? { credentials: () => ({ jwt: current.nats.jwt, seed: current.nats.seed }) }
        : {}),
      inboxPrefix: identity.nats.inboxPrefix || undefined,
      logger: log,
      retryMs: options.natsRetryMs,
      ...(health
        ? { progress: health.loop('pull'), onConnection: (up: boolean) => health.connection('nats', up) }
        : {}),
    },
    async (outcome) => {
      if (outcome.kind === 'bundle') {
        await agent.offer(outcome.envelope, { origin: 'nats', generation: outcome.head.generation });
      } else if (outcome.kind === 'unreadable') {
        agent.refuse({
          generation: outcome.head?.generation ?? 0,
          digest: outcome.head?.digest ?? '',
          error: outcome.error,
        });
      }
    },
  );
  const status = startStatusClient({
    address: identity.hub,
    credentials: hubChannelCredentials(identity.caPem),
    agentCredential: identity.agentCredential,
    ...(options.saveIdentity
      ? {
          rotation: {
            due: () => credentialRotationDue(current),
            ageRecipient: () => current.ageRecipient,
            async rotated(agentCredential: string, expiresAt: Date, nats?: { jwt: string; seed: string }) {
              const next: AgentIdentity = {
                ...current,
                ...(nats?.jwt ? { nats: { ...current.nats, jwt: nats.jwt, seed: nats.seed } } : {}),
                agentCredential,
                credentialExpiresAt: expiresAt.toISOString(),
                credentialIssuedAt: new Date().toISOString(),
                ...(current.ageRecipient ? { ageRecipientRegistered: true } : {}),
              };
              await options.saveIdentity!(next);
              current = next;
            },
          },
        }
      : {}),
    outbox,
    logger: log,
    retryMs: options.hubRetryMs,
    ...(health
      ? { progress: health.loop('status'), onConnection: (up: boolean) => health.connection('hub', up) }
      : {}),
    onSync: (generation) => {
      agent.sync(generation).catch((err) => log.error({ err: errorMessage(err) }, 'sync command failed'));
    },
    onSettings: ({ heartbeatMs }) => agent.pace({ heartbeatMs }),
  });

  // `flotilla-agent import` in another process writes the last-bundle file: adopt it.
  const onStoredChange = () => {
    const bytes = bundleStore.read();
    if (!bytes || sha256Digest(bytes) === ownWrite) return;
    agent
      .offer(bytes, { origin: 'import' })
      .then((o) => {
        if (o.kind === 'applied') log.info({ generation: o.generation }, 'imported bundle adopted');
      })
      .catch((err) => log.error({ err: errorMessage(err) }, 'imported bundle failed'));
  };
  watchFile(bundleStore.path, { interval: options.importPollMs ?? 2000 }, onStoredChange);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      log.info('agent stopping');
      unwatchFile(bundleStore.path, onStoredChange);
      await agent.stop();
      await puller?.stop();
      await status.stop();
      outbox.close();
      lock.release();
      log.info({ unacknowledged: outbox.pending().length }, 'agent stopped; outbox flushed');
    })();
    return stopping;
  };
  return { agent, outbox, puller, status, started, stop };
}
