import type { Logger } from '@flotilla/shared';
import {
  BUNDLE_STREAM,
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
  /** Publishes an envelope as the cluster's latest bundle: chunks, then head, then notify. */
  publish(cluster: string, generation: number, envelope: Uint8Array): Promise<void>;
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
}

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
  // The newest account JWT (with every revocation so far): pushed again after each reconnect,
  // so a revocation made while NATS was away takes effect as soon as it is back.
  let latestAccountJwt = identity.accountJwt;
  const bus: BundleBus = {
    async publish(cluster, generation, envelope) {
      let head: TransportHead;
      try {
        head = await publishBundle(nc, cluster, generation, envelope, options.chunkSize);
      } catch (err) {
        throw new FlotillaError(
          'unavailable',
          `nats ${String(servers)}: publishing bundle generation ${generation} of cluster ${cluster} failed: ${String(err)}; it is published again on the next pass`,
          { cause: err },
        );
      }
      logger.info({ cluster, generation, chunks: head.chunks.length, bytes: head.size }, 'bundle published');
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
  await ensureBundleStream(nc);
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

async function ensureBundleStream(nc: NatsConnection): Promise<void> {
  const jsm = await nc.jetstreamManager();
  const config = {
    name: BUNDLE_STREAM,
    subjects: ['bundles.>'],
    max_msgs_per_subject: 1,
    allow_direct: true,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
  };
  try {
    await jsm.streams.info(BUNDLE_STREAM);
    await jsm.streams.update(BUNDLE_STREAM, config);
  } catch (err) {
    if (!/stream not found/i.test(String(err))) throw err;
    await jsm.streams.add(config);
  }
}
