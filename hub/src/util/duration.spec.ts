import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from './duration.js';

test('parseDuration reads unit suffixes and refuses anything else', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('250'), 250);
  assert.throws(() => parseDuration('soon'), /not a duration/);
  assert.throws(() => parseDuration('10x'), /not a duration/);
});
