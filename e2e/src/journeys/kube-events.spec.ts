import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl, kubectlJson } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - {name: dev, path: environments/dev, policy: {selfHeal: true, prune: true, sync: auto}}
pipeline: [dev]
`;

// biome-ignore lint/suspicious/noExplicitAny: kubectl's JSON is read field by field.
type Loose = any;

/**
 * What Flotilla did to a cluster is visible from inside it, with the tools people already use:
 * `kubectl get events` and `kubectl describe` show the agent's apply, heal and prune events, each
 * naming the bundle generation. Every part is a real process (hub, agent, NATS, git, kubectl).
 */
describe('journey: kubectl get events shows what Flotilla applied and healed', { timeout: 600_000 }, () => {
  let fleet: Fleet;
  let kc: string;
  const events = async (...selector: string[]): Promise<Loose[]> =>
    (
      await kubectlJson(kc, [
        'get',
        'events',
        '-n',
        'shop',
        ...(selector.length ? ['--field-selector', selector.join(',')] : []),
      ])
    ).items;

  before(async () => {
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...appFiles('dev') },
      clusters: [{ name: 'dev-a', environment: 'dev' }],
    });
    await fleet.waitSynced();
    kc = fleet.clusters.get('dev-a')!.kubeconfig;
  });
  after(() => fleet?.stop());

  test('the first apply, a healed drift and a new generation appear in kubectl get events and kubectl describe', async () => {
    const generation = (
      await fleet.flotillaJson<{ clusters: { name: string; generation: number }[] }>('fleet', 'status')
    ).clusters[0]!.generation;
    const created = await eventually(
      async () => {
        const list = await events('source=flotilla-agent', 'reason=Created');
        const objects = list.map((e) => `${e.involvedObject.kind}/${e.involvedObject.name}`).sort();
        assert.deepEqual(
          objects,
          ['ConfigMap/web-config', 'Deployment/web', 'Service/web'],
          'created events',
        );
        return list;
      },
      { timeoutMs: 30_000, message: 'the first apply wrote Created events' },
    );
    for (const e of created) {
      assert.equal(e.metadata.annotations['flotilla.dev/generation'], String(generation));
      assert.match(e.message, new RegExp(`from bundle generation ${generation} \\(revision [0-9a-f]{12}\\)`));
    }
    const table = await kubectl(kc, ['get', 'events', '-n', 'shop']);
    assert.match(table, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE/);
    assert.match(table, /Normal\s+Created\s+deployment\/web\s+Flotilla created it from bundle generation/);

    // Someone edits the ConfigMap by hand: the agent puts it back, and says so on the object.
    await kubectl(kc, [
      '-n',
      'shop',
      'patch',
      'configmap',
      'web-config',
      '-p',
      '{"data":{"LOG_LEVEL":"trace"}}',
    ]);
    const healed = await eventually(
      async () => {
        const [e] = await events('reason=Healed', 'involvedObject.name=web-config');
        assert.ok(e, 'a Healed event on web-config');
        return e;
      },
      { timeoutMs: 60_000, intervalMs: 500, message: 'the heal is an event' },
    );
    assert.equal(healed.type, 'Normal');
    assert.match(
      healed.message,
      new RegExp(`reverted drift in data\\.LOG_LEVEL to bundle generation ${generation}`),
    );
    const data = (await kubectlJson(kc, ['-n', 'shop', 'get', 'configmap', 'web-config'])).data;
    assert.equal(data.LOG_LEVEL, 'debug', 'the drift was healed');
    const described = await kubectl(kc, ['-n', 'shop', 'describe', 'configmap', 'web-config']);
    assert.match(described, /Normal\s+Created\s+\S+\s+flotilla-agent\s+Flotilla created it/);
    assert.match(
      described,
      /Normal\s+Healed\s+\S+\s+flotilla-agent\s+Flotilla reverted drift in data\.LOG_LEVEL/,
    );

    // A new commit changes the ConfigMap and drops the Service: Configured and Pruned, at the next generation.
    await fleet.work.commit(
      { ...appFiles('dev', { logLevel: 'info' }), 'environments/dev/service.yaml': null },
      'dev: log level info, no service',
    );
    await fleet.poke();
    await eventually(
      async () => {
        const [configured] = await events('reason=Configured', 'involvedObject.name=web-config');
        assert.ok(configured, 'a Configured event on web-config');
        assert.match(
          configured.message,
          new RegExp(`applied bundle generation ${generation + 1} .*: data\\.LOG_LEVEL`),
        );
        const [pruned] = await events('reason=Pruned', 'involvedObject.kind=Service');
        assert.ok(pruned, 'a Pruned event on the Service');
        assert.match(pruned.message, /deleted it: no longer in bundle generation/);
      },
      { timeoutMs: 60_000, intervalMs: 500, message: 'the new generation is in the events' },
    );
  });
});
