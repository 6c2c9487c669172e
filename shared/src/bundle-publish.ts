import { bundleChunkSubject, bundleSubject, notifySubject } from './subjects.js';
import { DEFAULT_CHUNK_SIZE, packForTransport, type TransportHead } from './transport.js';

/**
 * The parts of a NATS connection a bundle publish needs. A nats.js `NatsConnection` is one;
 * naming only these keeps shared free of a NATS client of its own.
 */
export interface BundlePublishConnection {
  jetstream(): { publish(subject: string, data?: Uint8Array): Promise<unknown> };
  publish(subject: string, data?: Uint8Array): void;
  flush(): Promise<void>;
}

/**
 * The payload of a notify message: advisory only. It carries the head just stored, so that
 * an agent can fetch the chunks at once instead of asking for the head first; the head is
 * checked like one read from the stream (chunk and whole digests), the envelope's signature
 * decides, and a head that no longer matches the stream (a newer bundle was published since)
 * sends the agent back to the stream's head. Older agents read `generation` only.
 */
export interface BundleNotice {
  generation: number;
  head?: TransportHead;
}

export interface BundlePublishOptions {
  /**
   * Wait until the notify has reached the server (a round trip); default true. A publisher of
   * many bundles at once passes false and flushes once after all of them: each flush is a
   * socket write and a PONG of its own.
   */
  flush?: boolean;
}

/**
 * Publishes envelope bytes as a cluster's latest bundle, the one way hub and agents agree on
 * (the hub's bus and every test that plays the hub call this, so there is one copy): the
 * chunks first, then the head naming them, so a head never names chunks not yet stored; then
 * a notify on core NATS, so a listening agent pulls at once instead of at its next poll.
 * NATS errors pass through unchanged: the caller knows what the publish was for.
 */
export async function publishBundle(
  conn: BundlePublishConnection,
  cluster: string,
  generation: number,
  envelope: Uint8Array,
  chunkSize = DEFAULT_CHUNK_SIZE,
  options: BundlePublishOptions = {},
): Promise<TransportHead> {
  const js = conn.jetstream();
  const { head, chunks } = packForTransport(envelope, { cluster, generation }, chunkSize);
  for (const [i, chunk] of chunks.entries()) await js.publish(bundleChunkSubject(cluster, i), chunk);
  await js.publish(bundleSubject(cluster), new TextEncoder().encode(JSON.stringify(head)));
  const notice: BundleNotice = { generation, head };
  conn.publish(notifySubject(cluster), new TextEncoder().encode(JSON.stringify(notice)));
  if (options.flush !== false) await conn.flush();
  return head;
}
