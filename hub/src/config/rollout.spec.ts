import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFleetConfig } from './fleet-config.js';
import { selectorMatches } from './rollout.js';

const env = (rollout: string) => `environments:
  - name: prod
    path: environments/prod
    rollout:
${rollout
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
pipeline: [prod]
`;

test('rollout: waves, maxUnavailable, soak, maxPrune and windows are read with their defaults', () => {
  const config = parseFleetConfig(
    env(`waves: [{name: canary, selector: "ring=canary,region in (eu,us)"}, {percent: 50}]
maxUnavailable: 1
soak: 5m
maxPrune: 30%
windows: [{days: [Sat, sun], hours: "22:00-04:00", timeZone: Europe/Berlin, selector: {matchLabels: {tier: edge}}}]`),
  );
  const r = config.environments[0]!.rollout!;
  assert.equal(r.waves.length, 2);
  assert.equal(r.waves[1]!.name, 'wave-2');
  assert.equal(r.maxUnavailable, 1);
  assert.equal(r.soakMs, 300_000);
  assert.equal(r.maxPrune, 0.3);
  assert.deepEqual(r.windows[0], {
    days: ['sat', 'sun'],
    hours: '22:00-04:00',
    timeZone: 'Europe/Berlin',
    selector: { matchLabels: { tier: 'edge' } },
  });
  const canary = r.waves[0]!;
  assert.ok('selector' in canary);
  assert.ok(selectorMatches(canary.selector, { ring: 'canary', region: 'eu' }));
  assert.ok(!selectorMatches(canary.selector, { ring: 'canary', region: 'ap' }));
  assert.equal(parseFleetConfig(env('soak: 1m')).environments[0]!.rollout!.maxPrune, 0.5);
});

test('rollout: a bad field is named with its line', () => {
  const cases: Array<[string, RegExp]> = [
    [
      'waves: [{percent: 0}]',
      /flotilla.yaml:5: environments\[0\].rollout.waves\[0\].percent: must be a number above 0/,
    ],
    ['waves: [{percent: 10, selector: "a=b"}]', /waves\[0\]: give exactly one of selector or percent/],
    [
      'waves: [{selector: "=b"}]',
      /waves\[0\]\.selector: requirement 1 \("=b"\): key: is not a valid label key/,
    ],
    ['waves: [{selector: ""}]', /waves\[0\]\.selector: must not be empty/],
    ['maxPrune: 150%', /rollout.maxPrune: must be a share/],
    ['windows: [{hours: "25:00-26:00"}]', /windows\[0\].hours: must be HH:MM-HH:MM/],
    [
      'windows: [{timeZone: Mars/Olympus}]',
      /windows\[0\].timeZone: Mars\/Olympus is not a known IANA time zone/,
    ],
    ['windows: [{days: [someday]}]', /windows\[0\].days: "someday" is not a day/],
    ['speed: fast', /rollout.speed: is not a known field/],
  ];
  for (const [yaml, message] of cases) assert.throws(() => parseFleetConfig(env(yaml)), message, yaml);
});
