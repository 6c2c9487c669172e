import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger } from '@flotilla/shared';
import { createEventRecorder, type EventSink, type KubeEvent, type ObjectEvent } from './recorder.js';

/** A sink that keeps events as the API server would: by namespace and name; `fail` answers a status. */
function memorySink() {
  const stored = new Map<string, KubeEvent>();
  const calls: string[] = [];
  let fail: number | undefined;
  const sink: EventSink = {
    async create(event) {
      calls.push('create');
      if (fail) throw Object.assign(new Error(`HTTP ${fail}`), { code: fail });
      stored.set(`${event.metadata.namespace}/${event.metadata.name}`, structuredClone(event));
    },
    async patch(namespace, name, patch) {
      calls.push('patch');
      if (fail) throw Object.assign(new Error(`HTTP ${fail}`), { code: fail });
      const e = stored.get(`${namespace}/${name}`);
      if (!e) throw Object.assign(new Error('not found'), { code: 404 });
      Object.assign(e, patch);
    },
  };
  return {
    sink,
    stored,
    calls,
    failWith(status: number | undefined) {
      fail = status;
    },
  };
}

const statusOf = (err: unknown) => (err as { code?: number }).code ?? 0;

const healed = (name: string, message = 'Flotilla reverted drift in spec.replicas'): ObjectEvent => ({
  object: { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: 'shop', uid: `uid-${name}` },
  type: 'Normal',
  reason: 'Healed',
  action: 'Heal',
  message,
  annotations: { 'flotilla.dev/generation': '4' },
});

describe('event recorder', () => {
  test('writes a core/v1 Event naming the object, reason, action, component and instance, in the object namespace', async () => {
    const m = memorySink();
    const at = new Date('2026-12-01T10:00:00.123Z');
    const r = createEventRecorder({ sink: m.sink, instance: 'agent-0', statusOf, now: () => at });
    r.record(healed('web'));
    r.record({
      ...healed('ns'),
      object: { apiVersion: 'v1', kind: 'Namespace', name: 'shop', namespace: '' },
    });
    await r.flush();
    const [web, ns] = [...m.stored.values()];
    assert.equal(web!.metadata.namespace, 'shop');
    assert.match(web!.metadata.name, /^web\.[0-9a-f]+$/);
    assert.deepEqual(web!.involvedObject, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'web',
      namespace: 'shop',
      uid: 'uid-web',
    });
    assert.equal(web!.reason, 'Healed');
    assert.equal(web!.action, 'Heal');
    assert.equal(web!.type, 'Normal');
    assert.deepEqual(web!.source, { component: 'flotilla-agent', host: 'agent-0' });
    assert.equal(web!.reportingComponent, 'flotilla-agent');
    assert.equal(web!.reportingInstance, 'agent-0');
    assert.equal(web!.firstTimestamp, '2026-12-01T10:00:00Z');
    assert.equal(web!.count, 1);
    assert.deepEqual(web!.metadata.annotations, { 'flotilla.dev/generation': '4' });
    // A cluster-scoped object's events live in default, and its reference has no namespace.
    assert.equal(ns!.metadata.namespace, 'default');
    assert.equal('namespace' in ns!.involvedObject, false);
  });

  test('a repeat of the same event bumps count and lastTimestamp of the one written (a patch), a different message is a new event', async () => {
    const m = memorySink();
    let now = new Date('2026-12-01T10:00:00Z');
    const r = createEventRecorder({ sink: m.sink, instance: 'a', statusOf, now: () => now });
    r.record(healed('web'));
    now = new Date('2026-12-01T10:01:00Z');
    r.record(healed('web'));
    now = new Date('2026-12-01T10:02:00Z');
    r.record(healed('web'));
    r.record(healed('web', 'Flotilla reverted drift in spec.template'));
    await r.flush();
    assert.deepEqual(m.calls, ['create', 'patch', 'patch', 'create']);
    const [first, other] = [...m.stored.values()];
    assert.equal(first!.count, 3);
    assert.equal(first!.firstTimestamp, '2026-12-01T10:00:00Z');
    assert.equal(first!.lastTimestamp, '2026-12-01T10:02:00Z');
    assert.equal(other!.count, 1);
    assert.deepEqual(r.stats(), { created: 2, counted: 2, filtered: 0, dropped: 0, failed: 0 });
  });

  test('an event gone from the server (expired) is written anew with its count when it repeats', async () => {
    const m = memorySink();
    const r = createEventRecorder({ sink: m.sink, instance: 'a', statusOf });
    r.record(healed('web'));
    await r.flush();
    m.stored.clear();
    r.record(healed('web'));
    await r.flush();
    assert.deepEqual(m.calls, ['create', 'patch', 'create']);
    assert.equal([...m.stored.values()][0]!.count, 2);
  });

  test('a heal loop is rate limited per object: the burst, then one event per refill period; other objects are not held back', async () => {
    const m = memorySink();
    let now = Date.parse('2026-12-01T10:00:00Z');
    const r = createEventRecorder({
      sink: m.sink,
      instance: 'a',
      statusOf,
      now: () => new Date(now),
      burst: 5,
      refillMs: 60_000,
    });
    for (let i = 0; i < 50; i++) {
      r.record(healed('web', `drift ${i}`));
      now += 1000;
    }
    r.record(healed('api'));
    await r.flush();
    // 5 at once, then 50 s later not yet a whole token.
    assert.equal(m.calls.length, 6);
    assert.equal(r.stats().filtered, 45);
    now += 60_000;
    r.record(healed('web', 'later'));
    await r.flush();
    assert.equal(m.calls.length, 7);
  });

  test('writes that fail never throw; a missing permission is warned about once, then logged at debug', async () => {
    const m = memorySink();
    const lines: { level: number; msg: string }[] = [];
    const logger = createLogger({
      name: 'test',
      level: 'debug',
      destination: new Writable({
        write(chunk, _enc, cb) {
          lines.push(JSON.parse(String(chunk)));
          cb();
        },
      }),
    });
    const r = createEventRecorder({ sink: m.sink, instance: 'a', statusOf, logger });
    m.failWith(403);
    r.record(healed('web'));
    r.record(healed('api'));
    await r.flush();
    const warns = lines.filter((l) => l.level === 40);
    assert.equal(warns.length, 1);
    assert.match(warns[0]!.msg, /needs create and patch on events/);
    assert.equal(r.stats().failed, 2);
    m.failWith(undefined);
    r.record(healed('web'));
    await r.flush();
    assert.equal(m.stored.size, 1);
  });

  test('a full queue drops events instead of growing, and a write that never answers is given up after the time limit', async () => {
    const hung: EventSink = { create: () => new Promise(() => {}), patch: () => new Promise(() => {}) };
    const r = createEventRecorder({ sink: hung, instance: 'a', statusOf, maxPending: 3, timeoutMs: 50 });
    for (let i = 0; i < 10; i++) r.record(healed(`o${i}`));
    assert.equal(r.stats().dropped, 7);
    await r.flush(5000);
    assert.equal(r.stats().failed, 3);
  });
});
