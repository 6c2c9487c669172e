import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalQuantity } from './quantity.js';

describe('resource quantities', () => {
  test('canonical form as apimachinery writes it', () => {
    const cases: [string | number, string][] = [
      ['1000m', '1'],
      ['0.5', '500m'],
      [0.5, '500m'],
      ['1024Mi', '1Gi'],
      ['1536Mi', '1536Mi'],
      ['1.5Mi', '1536Ki'],
      ['0.5Gi', '512Mi'],
      ['512', '512'],
      ['1024', '1024'],
      ['2000', '2k'],
      ['100m', '100m'],
      ['1500m', '1500m'],
      ['2.5', '2500m'],
      ['0', '0'],
      ['0Mi', '0'],
      ['1Ki', '1Ki'],
      ['100Ki', '100Ki'],
      ['1e3', '1e3'],
      ['1.5e3', '1500'],
      ['128974848', '128974848'],
      ['129M', '129M'],
      ['-1000m', '-1'],
      ['0.0000000001', '1n'],
      [1, '1'],
    ];
    for (const [input, want] of cases) {
      assert.equal(canonicalQuantity(input, 'cpu'), want, `${input}`);
    }
  });

  test('a malformed quantity is refused naming the field', () => {
    assert.throws(
      () => canonicalQuantity('1 GB', 'spec.containers[0].resources.limits.memory'),
      (err: Error & { code?: number }) =>
        err.code === 400 &&
        /spec\.containers\[0\]\.resources\.limits\.memory: quantities must match/.test(err.message),
    );
  });
});
