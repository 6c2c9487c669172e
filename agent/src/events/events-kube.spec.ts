import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startKubeServer } from '@flotilla/e2e/kube';
import { type Bundle, createLogger, DEFAULT_SYNC_POLICY, type KubeObject } from '@flotilla/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import { createReconciler } from '../reconcile/index.js';
import { testKubeConfig } from '../test-support.js';
import { createApplyEventWriter } from './index.js';

const run = promisify(execFile);

// biome-ignore lint/suspicious/noExplicitAny: kubectl output is read field by field in assertions.
type Loose = any;

/** The agent's events written through client-node to the Kubernetes API test server, read with real kubectl. */
describe('Kubernetes Events of applies, heals and prunes', () => {
  let kube: Awaited<ReturnType<typeof startKubeServer>>;
  let dir: string;
  let kubeconfigFile: string;
  let kubeConfig: KubeConfig;

  before(async () => {
    kube = await startKubeServer({ readyDelayMs: 100 });
    dir = await mkdtemp(join(tmpdir(), 'flotilla-events-'));
    kubeconfigFile = join(dir, 'kubeconfig');
    await writeFile(kubeconfigFile, kube.kubeconfig);
    kubeConfig = testKubeConfig(kube.kubeconfig);
  });

  after(async () => {
    await kube?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const kubectl = async (...args: string[]) =>
    (await run('kubectl', ['--kubeconfig', kubeconfigFile, ...args], { timeout: 60_000 })).stdout;

  const bundle = (generation: number, objects: KubeObject[]): Bundle => ({
    cluster: 'east',
    environment: 'dev',
    generation,
    revision: `rev${generation}aaaaaaaaaaaaaaaaaaaa`,
    source: { url: 'http://git.example/repo', branch: 'main', path: 'envs/dev' },
    createdAt: new Date().toISOString(),
    policy: { ...DEFAULT_SYNC_POLICY, prune: true },
    contentDigest: '',
    objects,
  });
  const ns: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } };
  const settings: KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'settings', namespace: 'shop' },
    data: { LOG_LEVEL: 'info' },
  };
  const web = (replicas: number): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] },
      },
    },
  });

  const eventsOf = async (kind: string, name: string): Promise<Loose[]> =>
    JSON.parse(
      await kubectl(
        'get',
        'events',
        '-n',
        'shop',
        '--field-selector',
        `involvedObject.kind=${kind},involvedObject.name=${name}`,
        '-o',
        'json',
      ),
    ).items;

  test('created, configured, healed (counted, not repeated) and pruned objects carry events that kubectl get events and describe show, with the bundle generation', async () => {
    const events = createApplyEventWriter({
      kubeConfig,
      instance: 'agent-east',
      logger: createLogger({ name: 't', level: 'silent' }),
    });
    const reconciler = createReconciler({
      kubeConfig,
      cluster: 'east',
      logger: createLogger({ name: 't', level: 'silent' }),
      onApplied: events.onApplied,
    });

    await reconciler.apply(bundle(1, [ns, settings, web(2)]));
    await events.flush();
    const created = await eventsOf('Deployment', 'web');
    assert.equal(created.length, 1);
    assert.equal(created[0].reason, 'Created');
    assert.equal(created[0].type, 'Normal');
    assert.equal(created[0].source.component, 'flotilla-agent');
    assert.equal(created[0].metadata.annotations['flotilla.dev/generation'], '1');
    assert.match(created[0].message, /created it from bundle generation 1 \(revision rev1a{8}\)/);
    const uid = JSON.parse(await kubectl('get', 'deployment', 'web', '-n', 'shop', '-o', 'json')).metadata
      .uid;
    assert.equal(created[0].involvedObject.uid, uid);
    // The namespace is cluster-scoped: its event is in default.
    const nsEvents = JSON.parse(
      await kubectl(
        'get',
        'events',
        '-n',
        'default',
        '--field-selector',
        'involvedObject.kind=Namespace',
        '-o',
        'json',
      ),
    ).items;
    assert.deepEqual(
      nsEvents.map((e: Loose) => [e.involvedObject.name, e.reason]),
      [['shop', 'Created']],
    );

    // Drift: someone scales it by hand, twice; each re-apply heals it.
    for (let i = 0; i < 2; i++) {
      await kubectl('scale', 'deployment', 'web', '-n', 'shop', '--replicas=5');
      const r = await reconciler.apply(bundle(1, [ns, settings, web(2)]));
      assert.equal(r.changes.configured.length, 1, 'the heal re-applied the deployment');
    }
    await events.flush();
    const healed = (await eventsOf('Deployment', 'web')).filter((e) => e.reason === 'Healed');
    assert.equal(healed.length, 1, 'the same heal twice is one event with a count');
    assert.equal(healed[0].count, 2);
    assert.equal(healed[0].action, 'Heal');
    assert.match(healed[0].message, /reverted drift in spec\.replicas to bundle generation 1/);

    // A new generation that changes the deployment and drops the ConfigMap.
    await reconciler.apply(bundle(2, [ns, web(3)]));
    await events.flush();
    const configured = (await eventsOf('Deployment', 'web')).filter((e) => e.reason === 'Configured');
    assert.equal(configured.length, 1);
    assert.match(configured[0].message, /applied bundle generation 2 .*: spec\.replicas/);
    const pruned = await eventsOf('ConfigMap', 'settings');
    assert.deepEqual(
      pruned.map((e: Loose) => e.reason),
      ['Created', 'Pruned'],
    );
    assert.match(pruned[1].message, /deleted it: no longer in bundle generation 2/);

    const table = await kubectl('get', 'events', '-n', 'shop');
    assert.match(table, /Normal\s+Healed\s+deployment\/web\s+Flotilla reverted drift in spec\.replicas/);
    assert.match(table, /Normal\s+Pruned\s+configmap\/settings\s+Flotilla deleted it/);
    const described = await kubectl('describe', 'deployment', 'web', '-n', 'shop');
    assert.match(
      described,
      /Normal\s+Created\s+\S+\s+flotilla-agent\s+Flotilla created it from bundle generation 1/,
    );
    assert.match(
      described,
      /Normal\s+Healed\s+\S+ \(x2 over \S+\)\s+flotilla-agent\s+Flotilla reverted drift/,
    );
    assert.match(
      described,
      /Normal\s+Configured\s+\S+\s+flotilla-agent\s+Flotilla applied bundle generation 2/,
    );
  });

  test("an object the apply could not write, and one that is not Flotilla's, get Warnings naming why", async () => {
    const events = createApplyEventWriter({ kubeConfig, instance: 'agent-east' });
    const reconciler = createReconciler({ kubeConfig, cluster: 'west', onApplied: events.onApplied });
    await kubectl('create', 'namespace', 'broken');
    await kubectl('create', 'deployment', 'bad', '-n', 'broken', '--image=nginx:1.27');
    await kubectl('create', 'deployment', 'theirs', '-n', 'broken', '--image=nginx:1.27');
    // Adopted, but its selector differs from the live one's: immutable, so the server refuses it.
    const bad: Loose = structuredClone(web(1));
    bad.metadata = { name: 'bad', namespace: 'broken', annotations: { 'flotilla.dev/adopt': 'true' } };
    bad.spec.selector.matchLabels = { app: 'other' };
    bad.spec.template.metadata.labels = { app: 'other' };
    const theirs: KubeObject = { ...web(1), metadata: { name: 'theirs', namespace: 'broken' } };
    const r = await reconciler.apply(bundle(1, [bad, theirs]));
    assert.equal(r.phase, 'Failed');
    await events.flush();
    const warnings: Loose[] = JSON.parse(
      await kubectl('get', 'events', '-n', 'broken', '--field-selector', 'type=Warning', '-o', 'json'),
    ).items;
    const byName = new Map(warnings.map((e) => [e.involvedObject.name, e]));
    assert.equal(warnings.length, 2, JSON.stringify(warnings));
    assert.equal(byName.get('bad').reason, 'ApplyFailed');
    assert.match(
      byName.get('bad').message,
      /could not apply bundle generation 1 .*: apps\/v1 Deployment broken\/bad: /,
    );
    assert.equal(byName.get('theirs').reason, 'NotAdopted');
    assert.match(byName.get('theirs').message, /not created by Flotilla/);
    const described = await kubectl('describe', 'deployment', 'theirs', '-n', 'broken');
    assert.match(described, /Warning\s+NotAdopted\s+\S+\s+flotilla-agent\s+Flotilla left it alone/);
  });
});
