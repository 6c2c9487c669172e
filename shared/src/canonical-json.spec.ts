import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalJson } from './canonical-json.js';

/** The first definition, kept as the reference: digests made by older hubs and agents must not change. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : reference(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`;
}

/** A deterministic pseudo-random JSON-like value: nested objects, arrays, odd keys and leaves. */
function randomValue(seed: { n: number }, depth: number): unknown {
  const next = () => {
    seed.n = (seed.n * 1103515245 + 12345) % 2147483648;
    return seed.n / 2147483648;
  };
  const keys = ['a', 'b', 'B', '_', '10', '2', 'é', 'z\u0000', '"q"', '😀', 'ab', 'a b', '', '-1'];
  const leaf = () => {
    const r = next();
    if (r < 0.15) return null;
    if (r < 0.25) return undefined;
    if (r < 0.35) return next() < 0.5;
    if (r < 0.55) return Math.round(next() * 1e6) / (next() < 0.5 ? 1 : 1000);
    if (r < 0.6) return Number.NaN;
    return keys[Math.floor(next() * keys.length)]! + String(Math.floor(next() * 10));
  };
  if (depth <= 0 || next() < 0.3) return leaf();
  if (next() < 0.4) return Array.from({ length: Math.floor(next() * 5) }, () => randomValue(seed, depth - 1));
  const obj: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 6); i > 0; i--)
    obj[keys[Math.floor(next() * keys.length)]!] = randomValue(seed, depth - 1);
  return obj;
}

describe('canonicalJson', () => {
  test('sorts keys at every level and drops undefined members', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } }),
      '{"a":{"d":[1,{"x":1,"y":2}]},"b":1}',
    );
  });

  test('writes the same bytes as the reference definition for edge cases', () => {
    const sparse: unknown[] = [1];
    sparse[3] = 2;
    const cases: unknown[] = [
      undefined,
      null,
      0,
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '',
      'a"b\\c\n\u2028',
      true,
      [],
      {},
      [undefined, null, () => 1],
      { f: () => 1, s: Symbol('x'), u: undefined },
      { 10: 'a', 2: 'b', a: 'c', A: 'd', '': 'e' },
      sparse,
      new Date(0),
      { nested: [[[]], [{}], { a: [undefined] }] },
    ];
    for (const c of cases) assert.equal(canonicalJson(c), reference(c), String(reference(c)));
  });

  test('writes the same bytes as the reference definition for 2,000 generated values', () => {
    const seed = { n: 42 };
    for (let i = 0; i < 2000; i++) {
      const v = randomValue(seed, 5);
      assert.equal(canonicalJson(v), reference(v));
    }
  });
});
