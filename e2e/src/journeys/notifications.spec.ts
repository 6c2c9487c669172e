import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { freePort } from '../harness/free-port.js';
import { kubectl } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - {name: dev, path: environments/dev, policy: {selfHeal: true, prune: true, sync: auto}}
  - name: prod
    path: environments/prod
    policy: {selfHeal: false, prune: true, sync: auto}
    rollout: {waves: [{name: canary, selector: ring=canary}], soak: 3s}
pipeline: [dev, prod]
`;

const KINDS = ['cluster.drift', 'promotion.made', 'rollout.halted'];

/** The app with its image and a short progress deadline, so that a broken image turns Degraded soon. */
function app(env: string, image: string): Record<string, string> {
  const files = appFiles(env, { image });
  const path = `environments/${env}/deployment.yaml`;
  files[path] = files[path]!.replace(/^spec:\n/m, 'spec:\n  progressDeadlineSeconds: 8\n');
  return files;
}

/** A webhook receiver started by the test: every POST body it got, parsed. */
async function startReceiver(port: number): Promise<{ bodies: Record<string, unknown>[]; server: Server }> {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => {
      text += c;
    });
    req.on('end', () => {
      bodies.push(JSON.parse(text));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { bodies, server };
}

interface Delivery {
  receiver: string;
  kind: string;
  state: string;
  attempts: number;
  lastError: string | null;
}

/**
 * Webhook notifications from a real hub with real agents: a receiver gets a promotion, the halt of
 * a rollout and a cluster's new drift once each, in the generic JSON body; a receiver that is down
 * gets the same events, in Slack's body, once it comes back; its URL (with a token in it) is never
 * shown by `flotilla notify history`.
 */
describe('journey: notifications reach a receiver once each, and a receiver that was down', {
  timeout: 900_000,
}, () => {
  let fleet: Fleet;
  let dir: string;
  let up: Awaited<ReturnType<typeof startReceiver>>;
  let late: Awaited<ReturnType<typeof startReceiver>> | undefined;
  let latePort: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-notify-'));
    up = await startReceiver(await freePort());
    // Nothing listens here until the test starts the second receiver.
    latePort = await freePort();
    const config = join(dir, 'notify.yaml');
    writeFileSync(
      config,
      `receivers:
  - {name: ops, url: "http://127.0.0.1:${(up.server.address() as { port: number }).port}/hook", events: [${KINDS.join(', ')}]}
  - {name: chat, url: "http://127.0.0.1:${latePort}/services/s3cret-token", format: slack, events: [${KINDS.join(', ')}]}
`,
    );
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': FLOTILLA_YAML,
        ...app('dev', 'nginx:1.27'),
        ...app('prod', 'nginx:1.27'),
      },
      clusters: [
        { name: 'dev-a', environment: 'dev', labels: { tag: '1.28' } },
        { name: 'prod-a', environment: 'prod', labels: { ring: 'canary', tag: 'fail' } },
        { name: 'prod-b', environment: 'prod', labels: { tag: '1.28' } },
      ],
      hubArgs: ['--notify-config', config],
    });
    await fleet.waitSynced(undefined, { timeoutMs: 180_000 });
  });
  after(async () => {
    await fleet?.stop();
    up?.server.close();
    late?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a promotion, the halt it leads to and a new drift reach the receiver once each, and the receiver that was down after it comes back', async () => {
    // A new image that works on dev-a (tag 1.28) and breaks the prod canary (tag fail).
    const rev = await fleet.work.commit(app('dev', `nginx:\${cluster.labels.tag}`), 'dev: new image');
    await fleet.poke();
    await fleet.waitSynced(['dev-a'], { revision: { 'dev-a': rev }, timeoutMs: 120_000 });
    const promoted = await fleet.flotilla('promote', 'dev', 'prod');
    assert.equal(promoted.code, 0, promoted.stderr);
    await eventually(
      async () => {
        const s = await fleet.flotillaJson<{ state: string }>('rollout', 'status', 'prod');
        assert.equal(s.state, 'halted', `rollout is ${s.state}`);
      },
      { timeoutMs: 240_000, intervalMs: 1000, message: 'the prod rollout halts on its canary' },
    );
    // prod does not heal: a hand edit on prod-b stays as drift.
    await kubectl(fleet.clusters.get('prod-b')!.kubeconfig, [
      '-n',
      'shop',
      'patch',
      'configmap',
      'web-config',
      '-p',
      '{"data":{"LOG_LEVEL":"trace"}}',
    ]);

    await eventually(
      async () => {
        const kinds = up.bodies.map((b) => b.kind as string).sort();
        assert.deepEqual(kinds, KINDS, `ops got ${kinds.join(', ')}`);
      },
      { timeoutMs: 120_000, intervalMs: 500, message: 'ops gets each event' },
    );
    const byKind = new Map(up.bodies.map((b) => [b.kind as string, b]));
    assert.match(String(byKind.get('promotion.made')!.summary), /promoted dev@[0-9a-f]{12} → prod/);
    assert.match(
      String(byKind.get('rollout.halted')!.summary),
      /rollout of prod .* halted at wave 1: cluster prod-a is Degraded/,
    );
    assert.equal(byKind.get('rollout.halted')!.cluster, 'prod-a');
    assert.match(
      String(byKind.get('cluster.drift')!.summary),
      /cluster prod-b: ConfigMap shop\/web-config drifted at data\.LOG_LEVEL/,
    );

    // chat is down: its deliveries wait and are retried, and its URL is never shown.
    const history = await eventually(
      async () => {
        const { deliveries } = await fleet.flotillaJson<{ deliveries: Delivery[] }>('notify', 'history');
        const chat = deliveries.filter((d) => d.receiver === 'chat');
        assert.equal(chat.length, 3, 'three deliveries queued for chat');
        assert.ok(
          chat.every((d) => d.state === 'pending' && d.attempts >= 1 && d.lastError),
          `chat deliveries failed and wait: ${JSON.stringify(chat)}`,
        );
        return deliveries;
      },
      { timeoutMs: 60_000, intervalMs: 500, message: 'chat deliveries are retried' },
    );
    const text = (await fleet.flotilla('notify', 'history')).stdout;
    for (const shown of [JSON.stringify(history), text]) assert.doesNotMatch(shown, /s3cret-token/);

    late = await startReceiver(latePort);
    await eventually(async () => assert.equal(late!.bodies.length, 3, `chat got ${late!.bodies.length}`), {
      timeoutMs: 120_000,
      intervalMs: 500,
      message: 'chat gets the events once it is back',
    });
    const texts = late.bodies.map((b) => String(b.text)).sort();
    assert.deepEqual(
      texts.map((t) => t.match(/^\[flotilla\] ([a-z.]+):/)?.[1]),
      KINDS,
      'Slack bodies, one per kind',
    );
    await eventually(
      async () => {
        const { deliveries } = await fleet.flotillaJson<{ deliveries: Delivery[] }>('notify', 'history');
        assert.equal(deliveries.length, 6, `${deliveries.length} deliveries`);
        assert.ok(
          deliveries.every((d) => d.state === 'delivered'),
          'all delivered',
        );
      },
      { timeoutMs: 30_000, message: 'history lists every delivery as delivered' },
    );
    // The hub looked at the fleet many times since (every 2 s): still one of each.
    assert.deepEqual(up.bodies.map((b) => b.kind as string).sort(), KINDS);
    assert.equal(late.bodies.length, 3);
  });
});
