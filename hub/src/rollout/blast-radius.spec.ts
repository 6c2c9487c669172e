import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SYNC_POLICY, type KubeObject } from '@flotilla/shared';
import { blastRadiusHold, countPrunes } from './blast-radius.js';

const cm = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'a' },
});
const five = ['a', 'b', 'c', 'd', 'e'].map(cm);
const hold = (next: KubeObject[], over: { maxPrune?: number; prune?: boolean; allowEmpty?: boolean } = {}) =>
  blastRadiusHold({
    cluster: 'c1',
    previous: five,
    next,
    policy: { ...DEFAULT_SYNC_POLICY, prune: over.prune ?? true, allowEmpty: over.allowEmpty ?? false },
    maxPrune: over.maxPrune ?? 0.5,
  });

test('prunes are the previous objects the next render no longer holds', () => {
  assert.deepEqual(countPrunes(five, [cm('a'), cm('z')]), { pruned: 4, of: 5, share: 0.8 });
});

test('pruning 80 % is held past the default 50 %, naming the counts, the threshold and how to go on', () => {
  assert.match(
    hold([cm('a')])!,
    /prune 4 of the 5 objects of cluster c1 \(80%\), more than rollout.maxPrune 50%.*flotilla bundle approve c1/,
  );
  assert.equal(hold([cm('a'), cm('b'), cm('c')]), undefined, '40 % passes');
});

test('a raised threshold, a policy that does not prune, or an allowed empty bundle hold nothing', () => {
  assert.equal(hold([cm('a')], { maxPrune: 0.8 }), undefined);
  assert.equal(hold([cm('a')], { prune: false }), undefined);
  assert.equal(hold([], { allowEmpty: true }), undefined);
  assert.ok(hold([], { allowEmpty: false }));
});
