import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { BundleRefusedSchema, ClusterStatusSchema, HeartbeatSchema } from '@flotilla/proto';
import { createOutbox, outboxPath, type ReportBody, seqFloorNow } from './outbox.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-outbox-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const status = (gen: number): ReportBody => ({
  case: 'status',
  value: create(ClusterStatusSchema, { appliedGeneration: BigInt(gen), revision: `r${gen}` }),
});
const heartbeat = (gen: number): ReportBody => ({
  case: 'heartbeat',
  value: create(HeartbeatSchema, { appliedGeneration: BigInt(gen) }),
});
const refused = (gen: number): ReportBody => ({
  case: 'refused',
  value: create(BundleRefusedSchema, { generation: BigInt(gen), code: 'bad-signature', reason: 'x' }),
});

test('reports survive a restart in order and leave only when acknowledged', (t) => {
  const dir = tempDir(t);
  const first = createOutbox({ dir });
  first.append(status(1));
  first.append(heartbeat(1));
  first.append(refused(2));
  first.close();

  const second = createOutbox({ dir });
  assert.deepEqual(
    second.pending().map((r) => [r.seq, r.body.case]),
    [
      [1n, 'status'],
      [2n, 'heartbeat'],
      [3n, 'refused'],
    ],
  );
  assert.equal(second.ack(2n), 2);
  second.close();

  const third = createOutbox({ dir });
  assert.deepEqual(
    third.pending().map((r) => r.seq),
    [3n],
  );
  third.close();
});

test('sequence numbers keep increasing across restarts even when everything was acknowledged', (t) => {
  const dir = tempDir(t);
  const a = createOutbox({ dir });
  a.append(status(1));
  a.append(status(2));
  a.ack(2n);
  assert.equal(a.pending().length, 0);
  a.close();
  const b = createOutbox({ dir });
  assert.equal(b.append(status(3)).seq, 3n);
  b.close();
});

test('a duplicate or stale acknowledgement is harmless', (t) => {
  const dir = tempDir(t);
  const box = createOutbox({ dir });
  box.append(status(1));
  box.append(status(2));
  assert.equal(box.ack(1n), 1);
  assert.equal(box.ack(1n), 0);
  assert.equal(box.ack(0n), 0);
  assert.deepEqual(
    box.pending().map((r) => r.seq),
    [2n],
  );
  box.close();
});

test('a torn last line from a crash mid-append is skipped, the rest is kept', (t) => {
  const dir = tempDir(t);
  const box = createOutbox({ dir });
  box.append(status(1));
  box.close();
  appendFileSync(join(dir, 'outbox.jsonl'), '{"r":{"seq":"2","stat');
  const again = createOutbox({ dir });
  assert.deepEqual(
    again.pending().map((r) => r.seq),
    [1n],
  );
  assert.equal(again.append(status(2)).seq, 2n);
  again.close();
});

test('above its cap the outbox collapses superseded statuses and heartbeats, never a BundleRefused', (t) => {
  const dir = tempDir(t);
  const box = createOutbox({ dir, cap: 10 });
  box.append(refused(1));
  for (let i = 1; i <= 6; i++) box.append(status(i));
  box.append(refused(7));
  for (let i = 0; i < 3; i++) box.append(heartbeat(6));
  // 11 > cap: summarised.
  const kinds = box.pending().map((r) => [r.seq, r.body.case]);
  assert.deepEqual(kinds, [
    [1n, 'refused'],
    [7n, 'status'],
    [8n, 'refused'],
    [11n, 'heartbeat'],
  ]);
  assert.deepEqual(box.summaries(), [{ statuses: 5, heartbeats: 2, fromSeq: 2n, toSeq: 10n }]);
  box.close();
  const reopened = createOutbox({ dir, cap: 10 });
  assert.deepEqual(
    reopened.pending().map((r) => r.seq),
    [1n, 7n, 8n, 11n],
  );
  assert.equal(reopened.append(status(8)).seq, 12n);
  reopened.close();
});

test('with a floor, a lost or older state dir never reuses a sequence number the hub may have stored', (t) => {
  const dir = tempDir(t);
  const first = createOutbox({ dir, seqFloor: 1_000n });
  const sent = [first.append(heartbeat(1)).seq, first.append(heartbeat(2)).seq];
  assert.deepEqual(sent, [1_000n, 1_001n]);
  first.close();
  // The state dir is lost: a new one starts from a later floor, above everything sent before.
  rmSync(dir, { recursive: true, force: true });
  const fresh = createOutbox({ dir, seqFloor: 2_000n });
  assert.equal(fresh.append(heartbeat(3)).seq, 2_000n);
  fresh.close();
  // An existing log further along than the floor goes on from where it was.
  const again = createOutbox({ dir, seqFloor: 1_500n });
  assert.equal(again.append(heartbeat(4)).seq, 2_001n);
  again.close();
  assert.ok(seqFloorNow() > 1_700_000_000_000_000n, 'the agent’s floor is the time in microseconds');
});

test('a drained outbox keeps a small log as it is and rewrites one grown past compactBytes', (t) => {
  const dir = tempDir(t);
  const box = createOutbox({ dir, compactBytes: 2000 });
  const lines = () => readFileSync(outboxPath(dir), 'utf8').trim().split('\n');
  box.append(status(1));
  box.ack(1n);
  // Header, the report and its acknowledgement: not rewritten at this drain.
  assert.equal(lines().length, 3);
  for (let gen = 2; gen < 40; gen++) box.append(status(gen));
  box.ack(39n);
  assert.deepEqual(lines(), [JSON.stringify({ h: { nextSeq: '40' } })], 'rewritten to its header alone');
  box.append(status(40));
  box.close();
  const again = createOutbox({ dir });
  assert.deepEqual(
    again.pending().map((r) => r.seq),
    [40n],
  );
  again.close();
});
