import assert from 'node:assert/strict';
import { test } from 'node:test';
import { soakClock } from './ingest.js';

const green = { revision: 'r1', phase: 'Synced', health: 'Healthy' };
const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-01T00:05:00Z');

test('the soak clock starts at the first green report, keeps running while green at one revision, and resets otherwise', () => {
  assert.equal(soakClock(undefined, green, t0)?.toISOString(), t0.toISOString());
  assert.equal(soakClock({ ...green, healthySince: t0 }, green, t1)?.toISOString(), t0.toISOString());
  assert.equal(
    soakClock({ ...green, healthySince: t0 }, { ...green, revision: 'r2' }, t1)?.toISOString(),
    t1.toISOString(),
    'a new revision soaks from its own first green report',
  );
  assert.equal(soakClock({ ...green, healthySince: t0 }, { ...green, health: 'Progressing' }, t1), null);
  assert.equal(soakClock({ ...green, healthySince: t0 }, { ...green, phase: 'Progressing' }, t1), null);
});
