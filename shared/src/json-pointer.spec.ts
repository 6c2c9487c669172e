import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJsonPointer } from './json-pointer.js';

test('JSON pointers: RFC 6901 escapes, and refusals that quote the pointer', () => {
  assert.deepEqual(parseJsonPointer('/a~1b/c~0d/0'), ['a/b', 'c~d', '0']);
  assert.deepEqual(parseJsonPointer('/'), ['']);
  assert.throws(() => parseJsonPointer('a'), /"a" is not a JSON pointer/);
  assert.throws(() => parseJsonPointer('/a~2'), /~ must be followed by 0 or 1/);
  assert.throws(() => parseJsonPointer('/a~'), /~ must be followed by 0 or 1/);
});
