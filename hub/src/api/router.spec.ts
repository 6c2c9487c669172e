import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlotillaError, InvalidError } from '@flotilla/shared';
import { httpErrorOf } from './http-errors.js';
import { matchPath } from './router.js';

test('matchPath binds params and refuses other shapes', () => {
  assert.deepEqual(matchPath('/api/v1/clusters/:name', '/api/v1/clusters/dev-1'), { name: 'dev-1' });
  assert.equal(matchPath('/api/v1/clusters/:name', '/api/v1/clusters'), undefined);
  assert.equal(matchPath('/api/v1/clusters', '/api/v1/audit'), undefined);
});

test('errors map to HTTP statuses in one place, and unexpected ones do not leak a stack', () => {
  assert.equal(httpErrorOf(new InvalidError('ttl', 'bad')).status, 400);
  assert.equal(httpErrorOf(new FlotillaError('not-found', 'x')).status, 404);
  assert.equal(httpErrorOf(new FlotillaError('conflict', 'x')).status, 409);
  assert.equal(httpErrorOf(new FlotillaError('unauthenticated', 'x')).status, 401);
  const internal = httpErrorOf(new Error('boom'));
  assert.equal(internal.status, 500);
  assert.deepEqual(internal.body, { error: 'internal error: boom', code: 'internal' });
});
