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

test('a database that cannot be reached is a 503 that never shows the query or its parameters', () => {
  const down = new Error('Failed query: select "token_hash" from "bootstrap_tokens" params: flt_join_x', {
    cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
  });
  const r = httpErrorOf(down);
  assert.equal(r.status, 503);
  assert.doesNotMatch(r.body.error, /select|params|flt_join/);
});
