import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createDriftClock } from './drift-clock.js';

describe('drift clock', () => {
  test('since is when a field was first seen drifting, and resets once it is back in sync', () => {
    const clock = createDriftClock();
    const id = { group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: 'web' };
    const d = { path: 'spec.replicas', desired: '2', live: '5' };
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-01T00:01:00Z');
    assert.equal(clock.stamp(id, [d], t1)[0]?.since, t1);
    assert.equal(clock.stamp(id, [{ ...d, live: '6' }], t2)[0]?.since, t1);
    assert.deepEqual(clock.stamp(id, [], t2), []);
    assert.equal(clock.stamp(id, [d], t2)[0]?.since, t2);
  });
});
