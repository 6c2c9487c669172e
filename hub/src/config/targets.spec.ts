import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidError } from '@flotilla/shared';
import { parseFleetConfig, selectApps, selectTarget } from './index.js';

const CONFIG = `environments:
  - name: staging
    path: environments/staging
  - name: prod
    path: environments/prod
    targets:
      - name: gpu
        selector:
          matchLabels: {gpu: "true"}
        path: targets/gpu
      - name: eu
        selector:
          matchExpressions:
            - {key: region, operator: In, values: [eu]}
        values: [values-eu.yaml]
      - name: canary
        selector: "canary,!legacy"
        path: targets/canary
apps:
  - name: monitoring
    selector: {matchLabels: {tier: prod}}
  - name: gpu-drivers
    path: platform/gpu
    selector: {matchExpressions: [{key: gpu, operator: Exists}]}
    environments: [prod]
pipeline: [staging, prod]
`;

function errorOf(text: string): string {
  try {
    parseFleetConfig(text);
  } catch (err) {
    assert.ok(err instanceof InvalidError, `expected InvalidError, got ${err}`);
    return err.message;
  }
  return assert.fail('expected parseFleetConfig to throw');
}

describe('flotilla.yaml targets and apps', () => {
  it('parses targets of an environment and fleet-wide apps, with defaults', () => {
    const config = parseFleetConfig(CONFIG);
    assert.equal(config.environments[0]?.targets, undefined, 'no targets: the field stays absent');
    assert.deepEqual(config.environments[1]?.targets, [
      { name: 'gpu', selector: { matchLabels: { gpu: 'true' } }, path: 'targets/gpu', values: [] },
      {
        name: 'eu',
        selector: { matchExpressions: [{ key: 'region', operator: 'In', values: ['eu'] }] },
        values: ['values-eu.yaml'],
      },
      {
        name: 'canary',
        selector: {
          matchExpressions: [
            { key: 'canary', operator: 'Exists' },
            { key: 'legacy', operator: 'DoesNotExist' },
          ],
        },
        path: 'targets/canary',
        values: [],
      },
    ]);
    assert.deepEqual(config.apps, [
      { name: 'monitoring', path: 'apps/monitoring', selector: { matchLabels: { tier: 'prod' } } },
      {
        name: 'gpu-drivers',
        path: 'platform/gpu',
        selector: { matchExpressions: [{ key: 'gpu', operator: 'Exists' }] },
        environments: ['prod'],
      },
    ]);
  });

  it('the first matching target wins; a cluster matching none has none', () => {
    const prod = parseFleetConfig(CONFIG).environments[1]!;
    const target = (labels: Record<string, string>) =>
      selectTarget(prod.targets, { environment: 'prod', labels })?.name;
    assert.equal(target({ gpu: 'true', region: 'eu' }), 'gpu');
    assert.equal(target({ gpu: 'false', region: 'eu' }), 'eu');
    assert.equal(target({ canary: '' }), 'canary');
    assert.equal(target({ canary: '', legacy: 'yes' }), undefined);
    assert.equal(target({}), undefined);
  });

  it('an app reaches the clusters its selector matches, within its environments', () => {
    const { apps } = parseFleetConfig(CONFIG);
    const names = (environment: string, labels: Record<string, string>) =>
      selectApps(apps, { environment, labels }).map((a) => a.name);
    assert.deepEqual(names('staging', { tier: 'prod', gpu: 'true' }), ['monitoring']);
    assert.deepEqual(names('prod', { tier: 'prod', gpu: 'true' }), ['monitoring', 'gpu-drivers']);
    assert.deepEqual(names('prod', { gpu: 'false' }), ['gpu-drivers']);
    assert.deepEqual(names('prod', {}), []);
  });

  it('names file, line and field for every mistake', () => {
    const cases: [string, string, RegExp][] = [
      [
        'matchLabels: {gpu: "true"}',
        'matchLabels: {gpu: true}',
        /^flotilla\.yaml:9: environments\[1\]\.targets\[0\]\.selector\.matchLabels\.gpu: must be a string \(quote it: "true"\)/,
      ],
      [
        'operator: In',
        'operator: Gt',
        /^flotilla\.yaml:14: environments\[1\]\.targets\[1\]\.selector\.matchExpressions\[0\]\.operator: must be In, NotIn, Exists or DoesNotExist/,
      ],
      [
        'values: [eu]}',
        'values: []}',
        /^flotilla\.yaml:14: environments\[1\]\.targets\[1\]\.selector\.matchExpressions\[0\]\.values: must be non-empty for operator In/,
      ],
      [
        'path: targets/gpu',
        'path: ../gpu',
        /^flotilla\.yaml:10: environments\[1\]\.targets\[0\]\.path: must not contain \.\. \(it is relative to the environment's path\)/,
      ],
      [
        '"canary,!legacy"',
        '"canary in (x"',
        /^flotilla\.yaml:17: environments\[1\]\.targets\[2\]\.selector: has unbalanced parentheses/,
      ],
      [
        '- name: eu',
        '- name: gpu',
        /^flotilla\.yaml:11: environments\[1\]\.targets\[1\]\.name: duplicates "gpu"/,
      ],
      [
        '        values: [values-eu.yaml]\n',
        '',
        /^flotilla\.yaml:11: environments\[1\]\.targets\[1\]: needs a path .* or values/,
      ],
      [
        'environments: [prod]',
        'environments: [qa]',
        /^flotilla\.yaml:25: apps\[1\]\.environments\[0\]: names no environment \(staging, prod\)/,
      ],
      [
        '    selector: {matchLabels: {tier: prod}}\n',
        '',
        /^flotilla\.yaml:20: apps\[0\]\.selector: is required/,
      ],
      ['path: platform/gpu', 'path: /abs', /^flotilla\.yaml:23: apps\[1\]\.path: must be relative/],
      [
        '  - name: monitoring',
        '  - name: monitoring\n    colour: red',
        /^flotilla\.yaml:21: apps\[0\]\.colour: is not a known field/,
      ],
    ];
    for (const [from, to, expected] of cases) {
      assert.ok(CONFIG.includes(from), from);
      assert.match(errorOf(CONFIG.replace(from, to)), expected, `${from} → ${to}`);
    }
  });
});
