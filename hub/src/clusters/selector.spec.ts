import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkRequirement,
  matchesSelector,
  parseLabelChanges,
  parseSelector,
  selectorText,
} from './selector.js';

describe('label selectors', () => {
  it('parses every form kubectl takes into matchLabels and matchExpressions', () => {
    assert.deepEqual(
      parseSelector('region in (eu, us),gpu=true,tier==prod,zone!=a,team notin (x),canary,!legacy'),
      {
        matchLabels: { gpu: 'true', tier: 'prod' },
        matchExpressions: [
          { key: 'region', operator: 'In', values: ['eu', 'us'] },
          { key: 'zone', operator: 'NotIn', values: ['a'] },
          { key: 'team', operator: 'NotIn', values: ['x'] },
          { key: 'canary', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      },
    );
  });

  it('the empty selector selects every cluster, labelled or not', () => {
    const all = parseSelector('');
    assert.deepEqual(all, {});
    assert.ok(matchesSelector(all, {}));
    assert.ok(matchesSelector(all, { a: 'b' }));
  });

  it('matches as the API server does: NotIn and != select a cluster without the label', () => {
    const s = parseSelector('region in (eu),gpu=true,zone!=a,!legacy');
    assert.ok(matchesSelector(s, { region: 'eu', gpu: 'true' }));
    assert.ok(matchesSelector(s, { region: 'eu', gpu: 'true', zone: 'b' }));
    assert.ok(!matchesSelector(s, { region: 'eu', gpu: 'true', zone: 'a' }));
    assert.ok(!matchesSelector(s, { region: 'us', gpu: 'true' }));
    assert.ok(!matchesSelector(s, { region: 'eu' }), 'matchLabels needs the label');
    assert.ok(!matchesSelector(s, { region: 'eu', gpu: 'true', legacy: '' }), 'DoesNotExist: even empty');
    assert.ok(matchesSelector(parseSelector('canary'), { canary: '' }), 'Exists: even an empty value');
  });

  it('refuses malformed requirements, naming the one at fault', () => {
    assert.throws(() => parseSelector('region in (eu'), /unbalanced parentheses/);
    assert.throws(() => parseSelector('gpu=true,,tier=prod'), /requirement 2 \(""\): is empty/);
    assert.throws(() => parseSelector('region in ()'), /requirement 1 .*empty value/);
    assert.throws(() => parseSelector('bad key=x'), /requirement 1/);
    assert.throws(() => parseSelector('k=v v'), /requirement 1/);
    assert.throws(() => parseSelector('-bad=x'), /requirement 1 .*not a valid label key/);
    assert.throws(() => parseSelector('a=b,a=c'), /equal both "b" and "c"/);
    assert.throws(() => parseSelector(`a=${'x'.repeat(64)}`), /not a valid label value/);
  });

  it('checks structured requirements as the API server does', () => {
    assert.throws(
      () => checkRequirement({ key: 'a', operator: 'In' }, 'sel.matchExpressions[0]'),
      /^InvalidError: sel\.matchExpressions\[0\]\.values: must be non-empty for operator In/,
    );
    assert.throws(
      () => checkRequirement({ key: 'a', operator: 'Exists', values: ['x'] }, 'e'),
      /e\.values: must be empty for operator Exists/,
    );
    assert.throws(
      () => checkRequirement({ key: 'a', operator: 'Gt' as never, values: ['1'] }, 'e'),
      /e\.operator: must be In, NotIn, Exists or DoesNotExist/,
    );
  });

  it('prints a selector back in the string form it parses from', () => {
    const text = 'gpu=true,region in (eu,us),zone notin (a),canary,!legacy';
    assert.equal(selectorText(parseSelector(text)), text);
    assert.deepEqual(parseSelector(selectorText(parseSelector(text))), parseSelector(text));
  });

  it('reads `cluster label` arguments: k=v sets, k- removes', () => {
    assert.deepEqual(parseLabelChanges(['gpu=true', 'region-', 'example.com/team=core']), {
      set: { gpu: 'true', 'example.com/team': 'core' },
      remove: ['region'],
    });
    assert.deepEqual(parseLabelChanges(['empty=']), { set: { empty: '' }, remove: [] });
    assert.throws(() => parseLabelChanges(['gpu']), /expected key=value to set or key- to remove/);
    assert.throws(() => parseLabelChanges(['gpu=a b']), /not a valid label value/);
    assert.throws(() => parseLabelChanges(['gpu=x', 'gpu-']), /is both set and removed/);
  });
});
