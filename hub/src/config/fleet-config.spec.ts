import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SYNC_POLICY, InvalidError } from '@flotilla/shared';
import { parseFleetConfig } from './index.js';

const EXAMPLE = `environments:
  - name: dev
    path: environments/dev
  - name: staging
    path: environments/staging/
  - name: prod
    path: environments/prod
    branch: release
    keep: [values-prod.yaml, patches/**]
    promotion: {soak: 10m, approve: true}
    policy: {selfHeal: false, prune: true, sync: manual}
pipeline: [dev, staging, prod]
`;

function errorOf(text: string): InvalidError {
  try {
    parseFleetConfig(text);
  } catch (err) {
    assert.ok(err instanceof InvalidError, `expected InvalidError, got ${err}`);
    return err;
  }
  assert.fail('expected parseFleetConfig to throw');
}

describe('parseFleetConfig', () => {
  it('parses the documented example with defaults filled in', () => {
    const config = parseFleetConfig(EXAMPLE);
    assert.deepEqual(config.pipeline, ['dev', 'staging', 'prod']);
    const [dev, staging, prod] = config.environments;
    assert.deepEqual(dev, {
      name: 'dev',
      path: 'environments/dev',
      branch: undefined,
      keep: [],
      promotion: { soakMs: 0, approve: false },
      policy: DEFAULT_SYNC_POLICY,
    });
    assert.equal(staging?.path, 'environments/staging', 'trailing slash is dropped');
    assert.equal(prod?.branch, 'release');
    assert.deepEqual(prod?.keep, ['values-prod.yaml', 'patches/**']);
    assert.deepEqual(prod?.promotion, { soakMs: 600_000, approve: true });
    assert.deepEqual(prod?.policy, { ...DEFAULT_SYNC_POLICY, selfHeal: false, sync: 'manual' });
  });

  it('names file, line and field for a path with ..', () => {
    const text = EXAMPLE.replace('path: environments/prod', 'path: ../outside');
    const err = errorOf(text);
    assert.match(err.message, /^flotilla\.yaml:7: environments\[2\]\.path: must not contain \.\./);
  });

  it('names file, line and field for an absolute path and uses the given file name', () => {
    try {
      parseFleetConfig('environments:\n  - name: dev\n    path: /etc\n', 'repo/flotilla.yaml');
      assert.fail('should throw');
    } catch (err) {
      assert.match(
        (err as Error).message,
        /^repo\/flotilla\.yaml:3: environments\[0\]\.path: must be relative/,
      );
    }
  });

  it('refuses a name that is not a DNS-1123 label, on its line', () => {
    const err = errorOf('environments:\n  - name: Dev_1\n    path: a\n');
    assert.match(err.message, /^flotilla\.yaml:2: environments\[0\]\.name: must be a DNS-1123 label/);
  });

  it('refuses a missing path, a duplicate name and an unknown field', () => {
    assert.match(errorOf('environments:\n  - name: dev\n').message, /environments\[0\]\.path: is required/);
    assert.match(
      errorOf('environments:\n  - {name: dev, path: a}\n  - {name: dev, path: b}\n').message,
      /^flotilla\.yaml:3: environments\[1\]\.name: duplicates "dev"/,
    );
    assert.match(
      errorOf('environments:\n  - name: dev\n    path: a\n    pth: b\n').message,
      /^flotilla\.yaml:4: environments\[0\]\.pth: is not a known field/,
    );
  });

  it('refuses a pipeline naming an unknown environment, on its line', () => {
    const err = errorOf('environments:\n  - {name: dev, path: a}\npipeline:\n  - dev\n  - qa\n');
    assert.match(err.message, /^flotilla\.yaml:5: pipeline\[1\]: names no environment/);
  });

  it('refuses a bad soak duration and a bad sync policy value', () => {
    assert.match(
      errorOf('environments:\n  - name: dev\n    path: a\n    promotion: {soak: soon}\n').message,
      /^flotilla\.yaml:4: environments\[0\]\.promotion\.soak: must be a duration/,
    );
    assert.match(
      errorOf('environments:\n  - name: dev\n    path: a\n    policy:\n      sync: sometimes\n').message,
      /^flotilla\.yaml:5: environments\[0\]\.policy\.sync: must be auto or manual/,
    );
  });

  it('reports invalid YAML with its line, and an empty file as missing environments', () => {
    assert.match(
      errorOf('environments:\n  - name: dev\n   path: [\n').message,
      /^flotilla\.yaml:\d+: is not valid YAML/,
    );
    assert.match(errorOf('').message, /^flotilla\.yaml:1: \(root\): must be a mapping/);
  });

  it('reads adopt and ignoreDifferences into the policy, and leaves both out when not set', () => {
    const config = parseFleetConfig(
      [
        'environments:',
        '  - name: dev',
        '    path: a',
        '    policy:',
        '      adopt: true',
        '      ignoreDifferences:',
        '        - {group: apps, kind: Deployment, name: web, jsonPointers: [/spec/replicas]}',
        '        - kind: ConfigMap',
        '          namespace: shop',
        '          jsonPointers: ["/data/a~1b"]',
        '  - name: prod',
        '    path: b',
        '    policy: {adopt: false}',
        '',
      ].join('\n'),
    );
    const [dev, prod] = config.environments;
    assert.deepEqual(dev?.policy, {
      ...DEFAULT_SYNC_POLICY,
      adopt: true,
      ignoreDifferences: [
        { group: 'apps', kind: 'Deployment', name: 'web', jsonPointers: ['/spec/replicas'] },
        { kind: 'ConfigMap', namespace: 'shop', jsonPointers: ['/data/a~1b'] },
      ],
    });
    assert.deepEqual(prod?.policy, DEFAULT_SYNC_POLICY, 'adopt: false is the default and is not written');
  });

  it('refuses a bad ignoreDifferences rule, naming file, line and field', () => {
    const env = (rule: string) =>
      `environments:\n  - name: dev\n    path: a\n    policy:\n      ignoreDifferences:\n${rule}`;
    assert.match(
      errorOf(env('        - {kind: Deployment, jsonPointers: [spec/replicas]}\n')).message,
      /^flotilla\.yaml:6: environments\[0\]\.policy\.ignoreDifferences\[0\]\.jsonPointers\[0\]: "spec\/replicas" is not a JSON pointer/,
    );
    assert.match(
      errorOf(env('        - {group: apps, jsonPointers: [/spec/replicas]}\n')).message,
      /^flotilla\.yaml:6: environments\[0\]\.policy\.ignoreDifferences\[0\]\.kind: is required/,
    );
    assert.match(
      errorOf(env('        - {kind: Deployment, pointers: [/spec/replicas]}\n')).message,
      /ignoreDifferences\[0\]\.pointers: is not a known field/,
    );
    assert.match(
      errorOf('environments:\n  - name: dev\n    path: a\n    policy: {adopt: yes please}\n').message,
      /^flotilla\.yaml:4: environments\[0\]\.policy\.adopt: must be true or false/,
    );
  });
});
