import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { type BundlePublishConnection, publishBundle } from './bundle-publish.js';
import { InvalidError } from './errors.js';
import { decodeTransportHead, unpackTransport } from './transport.js';

/** A connection that records each call in order; the real NATS round trip is tested in hub/src/nats. */
function recordingConnection(): BundlePublishConnection & {
  calls: { via: 'jetstream' | 'core' | 'flush'; subject?: string; data?: Uint8Array }[];
} {
  const calls: { via: 'jetstream' | 'core' | 'flush'; subject?: string; data?: Uint8Array }[] = [];
  return {
    calls,
    jetstream: () => ({
      async publish(subject, data) {
        calls.push({ via: 'jetstream', subject, data });
      },
    }),
    publish(subject, data) {
      calls.push({ via: 'core', subject, data });
    },
    async flush() {
      calls.push({ via: 'flush' });
    },
  };
}

test('chunks are stored first, then the head naming them, then a notify on core NATS, then a flush', async () => {
  const conn = recordingConnection();
  const envelope = new Uint8Array(randomBytes(50_000));
  const head = await publishBundle(conn, 'dev-1', 3, envelope, 10_000);
  const n = head.chunks.length;
  assert.ok(n > 1, `expected several chunks, got ${n}`);
  assert.deepEqual(
    conn.calls.map((c) => `${c.via} ${c.subject ?? ''}`.trim()),
    [
      ...head.chunks.map((_, i) => `jetstream bundles.dev-1.chunk.${i}`),
      'jetstream bundles.dev-1',
      'core notify.dev-1',
      'flush',
    ],
  );
  const stored = decodeTransportHead(conn.calls[n]!.data!);
  assert.deepEqual(stored, head);
  const bytes = await unpackTransport(stored, async (i) => conn.calls[i]!.data!);
  assert.deepEqual(Buffer.from(bytes), Buffer.from(envelope));
  // The notify names the generation and carries the head just stored (the agent's shortcut).
  assert.deepEqual(JSON.parse(new TextDecoder().decode(conn.calls[n + 1]!.data)), { generation: 3, head });
});

test('a cluster name that is not a single subject token is refused before anything is published', async () => {
  const conn = recordingConnection();
  await assert.rejects(
    publishBundle(conn, 'dev.*', 1, new Uint8Array(10)),
    (err) => err instanceof InvalidError && err.field === 'cluster name',
  );
  assert.deepEqual(conn.calls, []);
});
