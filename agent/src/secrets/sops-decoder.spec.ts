import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from '@flotilla/e2e/harness';
import { startKubeServer } from '@flotilla/e2e/kube';
import {
  type Bundle,
  createLogger,
  DEFAULT_SYNC_POLICY,
  formatIdentity,
  type KubeObject,
} from '@flotilla/shared';
import {
  ageRecipientOf,
  encryptSopsDocument,
  generateAgeIdentity,
  KUBERNETES_ENCRYPTED_REGEX,
  parseAgeIdentities,
} from '@flotilla/shared/sops';
import { SOPS_FIXTURES_MISSING, sopsFixturesDir } from '@flotilla/shared/sops/testing';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { manifestDigest } from '../reconcile/apply.js';
import { createReconciler, type ResourceReport } from '../reconcile/index.js';
import { testKubeConfig } from '../test-support.js';
import { createSopsDecoder } from './index.js';

const run = promisify(execFile);

describe('SOPS Secrets decrypted by the agent just before apply (Kubernetes API test server)', {
  skip: SOPS_FIXTURES_MISSING,
}, () => {
  let kube: Awaited<ReturnType<typeof startKubeServer>>;
  let dir: string;
  let kubeconfigFile: string;
  let kubeConfig: KubeConfig;
  const fixtures = sopsFixturesDir() ?? '';

  before(async () => {
    kube = await startKubeServer({ readyDelayMs: 500 });
    dir = await mkdtemp(join(tmpdir(), 'flotilla-sops-agent-'));
    kubeconfigFile = join(dir, 'kubeconfig');
    await writeFile(kubeconfigFile, kube.kubeconfig);
    kubeConfig = testKubeConfig(kube.kubeconfig);
  });
  after(async () => {
    await kube?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const kubectlJson = async (...args: string[]) =>
    JSON.parse(
      (await run('kubectl', ['--kubeconfig', kubeconfigFile, ...args, '-o', 'json'], { timeout: 60_000 }))
        .stdout,
    );
  const fixture = async (name: string) => parse(await readFile(join(fixtures, name), 'utf8')) as KubeObject;
  const bundleOf = (generation: number, objects: KubeObject[]): Bundle => ({
    cluster: 'sops',
    environment: 'dev',
    generation,
    revision: `r${generation}`,
    source: { url: 'test', branch: 'main', path: 'env' },
    createdAt: new Date().toISOString(),
    policy: DEFAULT_SYNC_POLICY,
    contentDigest: `d${generation}`,
    objects,
  });
  const reportOf = (rs: readonly ResourceReport[], name: string) => rs.find((r) => r.id.name === name);

  test('a Secret made by the real sops is applied in clear; a tampered one and one for other recipients fail alone, named, never pruned', async () => {
    const identities = parseAgeIdentities(
      await readFile(join(fixtures, 'flux-age-global.txt'), 'utf8'),
      'key',
    );
    const r = createReconciler({
      kubeConfig,
      cluster: 'sops',
      logger: createLogger({ name: 'test', level: 'silent' }),
      decoder: createSopsDecoder(() => identities),
    });
    const real = await fixture('flux-global-secret.yaml');
    const tampered = await fixture('flux-global-secret.yaml');
    (tampered.metadata as { name: string }).name = 'tampered';
    const stranger = await encryptSopsDocument(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'stranger', namespace: 'default' },
        stringData: { key: 'not-for-this-agent' },
      },
      {
        recipients: [await ageRecipientOf(await generateAgeIdentity())],
        encryptedRegex: KUBERNETES_ENCRYPTED_REGEX,
      },
    );
    const cm: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'plain', namespace: 'default' },
      data: { a: 'b' },
    };
    const first = await r.apply(bundleOf(1, [real, tampered, stranger as KubeObject, cm]));

    // The inventory records the digest of the bundle's (encrypted) form, no hash of a clear value.
    const inventory = JSON.stringify(
      await kubectlJson('get', 'configmap', '-n', 'flotilla-system', 'flotilla-inventory-sops'),
    );
    assert.ok(inventory.includes(manifestDigest(real)), 'the encrypted form is what the inventory records');
    const live = await kubectlJson('get', 'secret', 'global-age-secret', '-n', 'default');
    assert.equal(
      Buffer.from(live.data.key, 'base64').toString(),
      'global-value',
      'the cluster holds the clear value',
    );
    assert.equal(live.sops, undefined, 'no SOPS metadata reaches the cluster');
    await kubectlJson('get', 'configmap', 'plain', '-n', 'default');
    await assert.rejects(kubectlJson('get', 'secret', 'tampered', '-n', 'default'));

    assert.equal(first.phase, 'Failed');
    const failed = new Map(first.changes.failed.map((f) => [formatIdentity(f.id), f.error]));
    assert.match(
      failed.get('v1 Secret default/tampered') ?? '',
      /^v1 Secret default\/tampered: SOPS document refused: MAC mismatch/,
    );
    assert.match(
      failed.get('v1 Secret default/stranger') ?? '',
      /^v1 Secret default\/stranger: SOPS document refused: no age identity held here opens it; it is encrypted for age1/,
    );
    assert.equal(failed.size, 2, 'only the two refused Secrets failed');
    assert.ok(
      first.changes.failed.every((f) => f.permanent),
      'refusals are permanent: retrying the same bundle would only repeat them',
    );
    assert.doesNotMatch(JSON.stringify(first), /global-value|not-for-this-agent/);
    assert.equal(reportOf(first.resources, 'global-age-secret')?.sync, 'Synced');
    assert.match(reportOf(first.resources, 'stranger')?.error ?? '', /no age identity/);

    // The applied Secret turns unreadable (tampered in place): it fails, stays live, is not pruned.
    const broken = await fixture('flux-global-secret.yaml');
    (broken.stringData as { key: string }).key = (broken.stringData as { key: string }).key.replace(
      /data:[^,]+/,
      'data:AAAAAAAAAAAA',
    );
    const bundle2 = bundleOf(2, [broken, cm]);
    const second = await r.apply(bundle2);
    assert.match(
      second.changes.failed.map((f) => f.error).join('\n'),
      /^v1 Secret default\/global-age-secret: SOPS document refused: stringData\.key: does not decrypt/m,
    );
    assert.deepEqual(second.changes.deleted, [], 'a refused Secret is never pruned');
    const still = await kubectlJson('get', 'secret', 'global-age-secret', '-n', 'default');
    assert.equal(Buffer.from(still.data.key, 'base64').toString(), 'global-value');
    assert.equal(reportOf(second.resources, 'global-age-secret')?.sync, 'OutOfSync');

    // Assess and the watch keep reporting the refusal, with the rest of the bundle.
    assert.match(
      reportOf((await r.assess(bundle2)).resources, 'global-age-secret')?.error ?? '',
      /MAC|decrypt/,
    );
    let seen: ResourceReport[] = [];
    const watch = r.watch(bundle2, (rs) => {
      seen = rs;
    });
    await watch.ready;
    await watch.resync();
    await run('kubectl', ['--kubeconfig', kubeconfigFile, 'delete', 'configmap', 'plain', '-n', 'default']);
    await eventually(
      () =>
        assert.ok(
          reportOf(seen, 'global-age-secret')?.error && reportOf(seen, 'plain')?.sync === 'Missing',
          'the watch reports the deleted ConfigMap with the refused Secret',
        ),
      { timeoutMs: 10_000 },
    );
    await watch.stop();
  });
});
