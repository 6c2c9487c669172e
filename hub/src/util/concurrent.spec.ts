import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mapConcurrent } from './concurrent.js';

describe('mapConcurrent', () => {
  it('keeps input order and never has more than the limit in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapConcurrent([5, 1, 4, 2, 3, 0], 2, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setImmediate(r));
      for (let i = 0; i < n; i++) await Promise.resolve();
      inFlight--;
      return n * 10;
    });
    assert.deepEqual(out, [50, 10, 40, 20, 30, 0]);
    assert.equal(most, 2);
  });

  it('returns an empty list for no items', async () => {
    assert.deepEqual(await mapConcurrent([], 4, async () => 1), []);
  });
});
