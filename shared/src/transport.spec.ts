import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { VerifyError } from './envelope.js';
import { decodeTransportHead, MAX_ENVELOPE_BYTES, packForTransport, unpackTransport } from './transport.js';

test('a large envelope splits into chunks and reassembles byte for byte', async () => {
  const envelope = new Uint8Array(randomBytes(3 * 1024 * 1024));
  const { head, chunks } = packForTransport(envelope, { cluster: 'c1', generation: 5 }, 256 * 1024);
  assert.ok(chunks.length > 10);
  const head2 = decodeTransportHead(new TextEncoder().encode(JSON.stringify(head)));
  const out = await unpackTransport(head2, async (i) => chunks[i]!);
  assert.deepEqual(Buffer.from(out), Buffer.from(envelope));
});

test('a truncated or foreign chunk is refused as digest-mismatch', async () => {
  const { head, chunks } = packForTransport(
    new Uint8Array(randomBytes(100_000)),
    { cluster: 'c1', generation: 5 },
    10_000,
  );
  await assert.rejects(
    unpackTransport(head, async (i) => (i === 3 ? chunks[i]!.subarray(0, 100) : chunks[i]!)),
    (err: unknown) => err instanceof VerifyError && err.reason === 'digest-mismatch',
  );
});

test('a gzip bomb (a small transport that inflates past the envelope cap) is refused as malformed', async () => {
  const { head, chunks } = packForTransport(new Uint8Array(MAX_ENVELOPE_BYTES + 1024), {
    cluster: 'c1',
    generation: 6,
  });
  assert.ok(head.size < 1024 * 1024, `the bomb travels small (${head.size} bytes)`);
  await assert.rejects(
    unpackTransport(head, async (i) => chunks[i]!),
    (err: unknown) => err instanceof VerifyError && err.reason === 'malformed',
  );
});
