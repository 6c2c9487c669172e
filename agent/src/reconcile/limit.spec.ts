import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLimiter } from './limit.js';

describe('limiter', () => {
  test('never runs more than its concurrency at once, and runs every task in arrival order', async () => {
    const limit = createLimiter(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const gates: (() => void)[] = [];
    const results = Array.from({ length: 5 }, (_, i) =>
      limit(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((ok) => gates.push(ok));
        running--;
        return i;
      }),
    );
    // Release the gates one by one as tasks arrive at them.
    while (started.length < 5 || gates.length > 0) {
      await new Promise((ok) => setImmediate(ok));
      gates.shift()?.();
    }
    assert.deepEqual(await Promise.all(results), [0, 1, 2, 3, 4]);
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    assert.equal(peak, 2);
  });

  test('a failing task rejects alone and frees its slot', async () => {
    const limit = createLimiter(1);
    const failed = limit(async () => {
      throw new Error('boom');
    });
    const ok = limit(async () => 'ok');
    await assert.rejects(failed, (err: unknown) => err instanceof Error && err.message === 'boom');
    assert.equal(await ok, 'ok');
  });
});
