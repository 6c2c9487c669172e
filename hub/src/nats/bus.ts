import type { Logger } from '@flotilla/shared';
import {
  BUNDLE_STREAM,
  backoffDelay,
  bundleSubject,
  FlotillaError,
  publishBundle,
  type TransportHead,
} from '@flotilla/shared';
import {
  connect,
  DiscardPolicy,
  jwtAuthenticator,
  type NatsConnection,
  RetentionPolicy,
  StorageType,
} from 'nats';
import { mintHubUser, mintSystemUser, type NatsIdentity } from './identity.js';

/** Where bundles go: the hub's only write path into NATS. */
export interface BundleBus {
  /**
   * Publishes an envelope as the cluster's latest bundle: chunks, then head, then notify.
   * With `flush: false` the notify may still be queued when it resolves: call flush() after a
   * batch of publishes.
   */
  publish(
    cluster: string,
    generation: number,
    envelope: Uint8Array,
    options?: { flush?: boolean },
  ): Promise<void>;
  /** Waits until every notify queued so far has reached the server. */
  flush(): Promise<void>;
  /** Pushes a re-signed account JWT (e.g. with a revocation) to the servers. */
  updateAccount(accountJwt: string): Promise<void>;
  /** Purges a cluster's head and chunks from the stream. */
  forget(cluster: string): Promise<void>;
  close(): Promise<void>;
}

export interface BundleBusOptions {
  servers: string | string[];
  identity: NatsIdentity;
  logger: Logger;
  /** Chunk size for transport; the shared default fits any server's max_payload. */
  chunkSize?: number;
  /**
   * Copies of the BUNDLES stream in a NATS cluster (`num_replicas`): 3 keeps every bundle
   * readable and publishable with one node down. An existing stream with another count is
   * scaled to this one at start. Default {@link DEFAULT_BUNDLE_REPLICAS}.
   */
  replicas?: number;
  /**
   * How long publishes are retried while JetStream answers "no responders" or times out, as
   * it does for the few seconds a stream elects a new leader after a node died. Counted from
   * the first failure of an outage; default {@link DEFAULT_PUBLISH_RETRY_MS}.
   */
  publishRetryMs?: number;
}

/** Long enough for a stream leader election (a few seconds), short enough not to stall a pass. */
export const DEFAULT_PUBLISH_RETRY_MS = 10_000;

/** One copy: the only count a single nats-server accepts. A NATS cluster runs 3. */
export const DEFAULT_BUNDLE_REPLICAS = 1;
/** JetStream keeps at most five copies of a stream. */
export const MAX_BUNDLE_REPLICAS = 5;

/** JetStream API error codes the bus tells apart (nats-server's `err_code`). */
const JS_STREAM_NOT_FOUND = 10059;
const JS_REPLICAS_NOT_SUPPORTED = 10074;
const JS_INSUFFICIENT_RESOURCES = 10023;

/**
 * Connects to NATS as the hub user and makes sure the BUNDLES stream exists, keeping only
 * the newest message per subject, with direct get so agents read without consumers.
 */
export async function createBundleBus(options: BundleBusOptions): Promise<BundleBus> {
  const { identity, logger } = options;
  const hubUser = await mintHubUser(identity);
  const sysUser = await mintSystemUser(identity);
  const servers = options.servers;
  let nc: NatsConnection;
  let sys: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: 'flotilla-hub',
      authenticator: jwtAuthenticator(hubUser.jwt, hubUser.seed),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    sys = await connect({
      servers,
      name: 'flotilla-hub-sys',
      authenticator: jwtAuthenticator(sysUser.jwt, sysUser.seed),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
  } catch (err) {
    throw new FlotillaError('unavailable', `nats ${String(servers)}: cannot connect: ${String(err)}`, {
      cause: err,
    });
  }
  const publishRetryMs = options.publishRetryMs ?? DEFAULT_PUBLISH_RETRY_MS;
  /**
   * When publishes started failing: the retry window is one per outage, not one per bundle, so
   * a pass over many clusters with NATS away fails fast after it instead of waiting on each.
   */
  let unavailableSince: number | undefined;
  // The newest account JWT (with every revocation so far): pushed again after each reconnect,
  // so a revocation made while NATS was away takes effect as soon as it is back.
  let latestAccountJwt = identity.accountJwt;
  const bus: BundleBus = {
    async publish(cluster, generation, envelope, publishOptions) {
      let head: TransportHead;
      for (let attempt = 0; ; attempt++) {
        try {
          head = await publishBundle(nc, cluster, generation, envelope, options.chunkSize, publishOptions);
          unavailableSince = undefined;
          break;
        } catch (err) {
          unavailableSince ??= Date.now();
          if (!isTransient(err) || Date.now() - unavailableSince >= publishRetryMs) {
            throw new FlotillaError(
              'unavailable',
              `nats ${String(servers)}: publishing bundle generation ${generation} of cluster ${cluster} failed: ${String(err)}; it is published again on the next pass`,
              { cause: err },
            );
          }
          if (attempt === 0) {
            logger.info({ cluster, generation, err: String(err) }, 'nats: publish refused for now; retrying');
          }
          await new Promise((r) => setTimeout(r, backoffDelay(attempt, { baseMs: 250, maxMs: 2000 })));
        }
      }
      // One line a bundle is one write a bundle: at fleet size the publisher logs a line per batch.
      logger.debug({ cluster, generation, chunks: head.chunks.length, bytes: head.size }, 'bundle published');
    },
    async flush() {
      await nc.flush();
    },
    async updateAccount(accountJwt) {
      latestAccountJwt = accountJwt;
      const reply = await sys.request('$SYS.REQ.CLAIMS.UPDATE', new TextEncoder().encode(accountJwt), {
        timeout: 10_000,
      });
      const answer = JSON.parse(new TextDecoder().decode(reply.data)) as { error?: { description?: string } };
      if (answer.error) {
        throw new FlotillaError('unavailable', `nats: account update refused: ${answer.error.description}`);
      }
    },
    async forget(cluster) {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.purge(BUNDLE_STREAM, { filter: bundleSubject(cluster) });
      await jsm.streams.purge(BUNDLE_STREAM, { filter: `${bundleSubject(cluster)}.>` });
      logger.info({ cluster }, 'bundles of a removed cluster purged');
    },
    async close() {
      await Promise.allSettled([nc.drain(), sys.drain()]);
    },
  };
  try {
    await ensureBundleStream(nc, options.replicas ?? DEFAULT_BUNDLE_REPLICAS, logger);
  } catch (err) {
    await bus.close();
    throw err;
  }
  // The servers may hold an older account JWT (e.g. without the latest revocations).
  await bus.updateAccount(identity.accountJwt).catch((err) => {
    logger.warn({ err: String(err) }, 'nats: could not push the account JWT');
  });
  (async () => {
    for await (const s of sys.status()) {
      if (s.type !== 'reconnect') continue;
      await bus.updateAccount(latestAccountJwt).then(
        () => logger.info('nats: account JWT pushed again after reconnect'),
        (err) => logger.warn({ err: String(err) }, 'nats: could not push the account JWT after reconnect'),
      );
    }
  })().catch(() => {});
  return bus;
}

/**
 * Errors that pass when JetStream settles: no responders (no stream leader yet), a timeout,
 * a lost connection, or JetStream's own 503. Anything else (a permission, a limit) does not.
 */
function isTransient(err: unknown): boolean {
  const e = err as { code?: string; api_error?: { code?: number } };
  return ['503', 'TIMEOUT', 'DISCONNECT'].includes(e.code ?? '') || e.api_error?.code === 503;
}

function apiErrorCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } }).api_error?.err_code;
}

/**
 * Creates the BUNDLES stream, or brings an existing one to this config. JetStream applies a
 * changed `num_replicas` with a stream update (the leader copies the messages to the new
 * peers, or drops peers), so a hub started with another `--bundle-replicas` scales the stream
 * in place and no bundle is lost.
 */
async function ensureBundleStream(nc: NatsConnection, replicas: number, logger: Logger): Promise<void> {
  const jsm = await nc.jetstreamManager();
  const config = {
    name: BUNDLE_STREAM,
    subjects: ['bundles.>'],
    max_msgs_per_subject: 1,
    allow_direct: true,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: replicas,
  };
  try {
    let before: number | undefined;
    try {
      before = (await jsm.streams.info(BUNDLE_STREAM)).config.num_replicas;
    } catch (err) {
      if (apiErrorCode(err) !== JS_STREAM_NOT_FOUND) throw err;
    }
    if (before === undefined) {
      await jsm.streams.add(config);
      return;
    }
    await jsm.streams.update(BUNDLE_STREAM, config);
    if (before !== replicas) {
      logger.info({ stream: BUNDLE_STREAM, from: before, to: replicas }, 'bundle stream replicas changed');
    }
  } catch (err) {
    const code = apiErrorCode(err);
    const why =
      code === JS_REPLICAS_NOT_SUPPORTED
        ? `${replicas} replicas need a clustered JetStream, and this NATS is a single server: use --bundle-replicas 1 or run a NATS cluster`
        : code === JS_INSUFFICIENT_RESOURCES
          ? `${replicas} replicas need ${replicas} JetStream servers up in the NATS cluster`
          : String(err);
    throw new FlotillaError(
      code === JS_REPLICAS_NOT_SUPPORTED ? 'invalid' : 'unavailable',
      `nats stream ${BUNDLE_STREAM}: cannot create or update it with num_replicas ${replicas}: ${why}`,
      { cause: err },
    );
  }
}
