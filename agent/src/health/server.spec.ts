import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidError } from '@flotilla/shared';
import { createAgentHealth } from './agent-health.js';
import { parseListenAddress, startHealthServer } from './server.js';

test('--metrics-addr takes HOST:PORT, :PORT and [v6]:PORT, and names itself when refusing anything else', () => {
  assert.deepEqual(parseListenAddress(':8080'), { port: 8080 });
  assert.deepEqual(parseListenAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseListenAddress('[::1]:9090'), { host: '::1', port: 9090 });
  assert.deepEqual(parseListenAddress('localhost:8080'), { host: 'localhost', port: 8080 });
  for (const bad of ['8080', 'host:', ':65536', '::1:80', 'http://x:80']) {
    assert.throws(
      () => parseListenAddress(bad),
      (err: unknown) => err instanceof InvalidError && err.message.includes('--metrics-addr'),
      bad,
    );
  }
});

test('the endpoints over real HTTP: /healthz names a stalled loop, /readyz says why not, /metrics is Prometheus text', async (t) => {
  let now = 1_000_000;
  const health = createAgentHealth({
    cluster: 'dev-1',
    version: 'test',
    stallTimeoutMs: 30_000,
    now: () => now,
  });
  const server = await startHealthServer({ address: '127.0.0.1:0', health });
  t.after(() => server.close());
  const url = `http://${server.address}`;
  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${url}${path}`, init);
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
  };

  assert.deepEqual(await get('/healthz'), {
    status: 200,
    body: 'ok\npull: idle\nwatch: idle\nreconcile: idle\nstatus: idle\n',
    type: 'text/plain; charset=utf-8',
  });
  health.loop('watch').beat('apps/v1|Deployment|shop');
  now += 30_500;
  const stalled = await get('/healthz');
  assert.equal(stalled.status, 503);
  assert.match(stalled.body, /^stalled\n/);
  assert.match(
    stalled.body,
    /^watch: stalled \(apps\/v1\|Deployment\|shop\), no progress for 30\.5 s of 30 s$/m,
  );
  health.loop('watch').idle('apps/v1|Deployment|shop');
  assert.equal((await get('/healthz')).status, 200, 'a loop that moves on is healthy again');

  assert.deepEqual(await get('/readyz'), {
    status: 503,
    body: 'not ready: no bundle applied yet\n',
    type: 'text/plain; charset=utf-8',
  });

  const metrics = await get('/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.type ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(metrics.body, /^flotilla_agent_info\{cluster="dev-1",version="test"\} 1$/m);
  assert.match(metrics.body, /^# TYPE flotilla_agent_apply_duration_seconds histogram$/m);

  assert.equal((await get('/metrics', { method: 'POST' })).status, 405);
  assert.equal((await get('/healthz', { method: 'HEAD' })).status, 200);
  assert.equal((await get('/')).status, 404);
});

test('a port already taken fails at start, naming the address', async (t) => {
  const health = createAgentHealth({ cluster: 'dev-1', version: 'test' });
  const first = await startHealthServer({ address: '127.0.0.1:0', health });
  t.after(() => first.close());
  await assert.rejects(
    startHealthServer({ address: first.address, health }),
    (err: unknown) =>
      err instanceof InvalidError && err.message.includes(`cannot listen on ${first.address}`),
  );
});
