import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBatchedLookup } from './batched-lookup.js';

test('keys asked for together share one lookup; keys asked for during it wait for the next', async () => {
  const batches: string[][] = [];
  let release: (() => void) | undefined;
  const lookup = createBatchedLookup<string, number>(async (keys) => {
    batches.push(keys);
    if (batches.length === 1) await new Promise<void>((r) => (release = r));
    return new Map(keys.filter((k) => k !== 'unknown').map((k) => [k, k.length]));
  });
  const first = [lookup.get('a'), lookup.get('bb'), lookup.get('a'), lookup.get('unknown')];
  while (!release) await new Promise((r) => setImmediate(r));
  // Asked while the first lookup runs: it must not be answered from that one.
  const late = lookup.get('a');
  release();
  assert.deepEqual(await Promise.all(first), [1, 2, 1, undefined]);
  assert.equal(await late, 1);
  assert.deepEqual(batches, [['a', 'bb', 'unknown'], ['a']]);
});

test('a failed lookup fails each of its callers, and the next batch runs', async () => {
  let calls = 0;
  const lookup = createBatchedLookup<string, string>(async (keys) => {
    calls++;
    if (calls === 1) throw new Error('database down');
    return new Map(keys.map((k) => [k, k]));
  });
  const failed = await Promise.allSettled([lookup.get('x'), lookup.get('y')]);
  assert.deepEqual(
    failed.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  assert.equal(await lookup.get('x'), 'x');
});
