import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from './backoff.js';

test('backoff doubles from the base for each retry', () => {
  assert.deepEqual(
    [0, 1, 2, 3].map((n) => backoffDelay(n, { baseMs: 100 })),
    [100, 200, 400, 800],
  );
});

test('backoff stops at maxMs and at maxDoublings, whichever comes first', () => {
  assert.equal(backoffDelay(10, { baseMs: 100, maxMs: 1000 }), 1000);
  assert.equal(backoffDelay(10, { baseMs: 100, maxDoublings: 2 }), 400);
  assert.equal(backoffDelay(10, { baseMs: 1000, maxMs: 30_000, maxDoublings: 5 }), 30_000);
});

test('backoff jitter keeps each wait within the share around it', () => {
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(2, { baseMs: 100, jitter: 0.25 });
    assert.ok(d >= 300 && d <= 500, `jittered wait ${d} outside 300–500`);
  }
});
