import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createWatchdog } from './progress.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}
const state = (w: ReturnType<typeof createWatchdog>, loop: string) => w.check().find((l) => l.loop === loop)!;

test('an idle loop is never stalled, however long it is silent', () => {
  const c = clock();
  const w = createWatchdog({ boundMs: 1000, now: c.now });
  w.loop('pull').beat();
  w.loop('pull').idle();
  c.advance(3_600_000);
  assert.deepEqual(
    w.check().map((l) => l.state),
    ['idle', 'idle', 'idle', 'idle'],
  );
});

test('a busy loop is stalled only once it has gone past its bound without a beat; a beat resets it', () => {
  const c = clock();
  const w = createWatchdog({ boundMs: 1000, now: c.now });
  w.loop('status').beat();
  c.advance(1000);
  assert.equal(state(w, 'status').state, 'busy', 'at the bound, not past it');
  c.advance(1);
  assert.equal(state(w, 'status').state, 'stalled');
  assert.equal(state(w, 'status').silentMs, 1001);
  w.loop('status').beat();
  assert.equal(state(w, 'status').state, 'busy');
  w.loop('status').idle();
  c.advance(5000);
  assert.equal(state(w, 'status').state, 'idle');
  assert.equal(state(w, 'status').lastProgressAt, 1_000_000 + 1001);
});

test('the parts of a loop are judged one by one: a silent stream is not hidden by a busy neighbour', () => {
  const c = clock();
  const w = createWatchdog({ boundMs: 1000, now: c.now });
  const watch = w.loop('watch');
  watch.beat('v1|ConfigMap|shop');
  watch.beat('apps/v1|Deployment|shop');
  for (let i = 0; i < 4; i++) {
    c.advance(400);
    watch.beat('apps/v1|Deployment|shop');
  }
  const s = state(w, 'watch');
  assert.equal(s.state, 'stalled');
  assert.equal(s.part, 'v1|ConfigMap|shop');
  assert.equal(s.lastProgressAt, c.now(), 'the loop as a whole did make progress');
  watch.idle('v1|ConfigMap|shop');
  assert.equal(state(w, 'watch').state, 'busy');
  assert.equal(state(w, 'pull').state, 'idle', 'other loops are untouched');
});
