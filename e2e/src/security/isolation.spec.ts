import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUNDLE_STREAM, bundleSubject } from '@flotilla/shared';
import type { NatsConnection } from 'nats';
import { runCli, splitCommand } from '../fleet/cli.js';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectlJson } from '../journeys/kubectl.js';
import {
  type AgentIdentityFile,
  connectAsAgent,
  connectAsHub,
  permissionRefused,
  readIdentity,
  readPublishedBundle,
  subscriptionRefused,
  within,
} from './support.js';

const FLOTILLA_YAML = `environments:
  - name: dev
    path: environments/dev
`;

interface AuditRow {
  action: string;
  outcome: string;
  cluster: string | null;
  detail: string | null;
}

/** Rows 1 and 2 of the security matrix: what an agent's credentials reach, and what registration refuses. */
describe('security: NATS isolation and registration, on real processes', { timeout: 300_000 }, () => {
  let fleet: Fleet;
  let east: AgentIdentityFile;
  let nc: NatsConnection;
  let hub: NatsConnection;
  const direct = (subject: string) => `$JS.API.DIRECT.GET.${BUNDLE_STREAM}.${subject}`;
  const audit = async () => (await fleet.flotillaJson<{ audit: AuditRow[] }>('audit')).audit;

  before(async () => {
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...appFiles('dev') },
      clusters: [
        { name: 'east', environment: 'dev' },
        { name: 'west', environment: 'dev' },
      ],
    });
    await fleet.waitSynced();
    east = readIdentity(fleet.clusters.get('east')!.stateDir);
    nc = await connectAsAgent(east);
    hub = await connectAsHub(fleet);
  });
  after(async () => {
    await nc?.close().catch(() => {});
    await hub?.close().catch(() => {});
    await fleet?.stop();
  });

  test("an agent's NATS credentials direct-get its own bundle head and chunks", async () => {
    const headMsg = await nc.request(direct(bundleSubject('east')), new Uint8Array(), { timeout: 5000 });
    const head = JSON.parse(new TextDecoder().decode(headMsg.data));
    assert.equal(head.cluster, 'east');
    assert.ok(head.chunks.length >= 1);
    const chunk = await nc.request(direct(`${bundleSubject('east')}.chunk.0`), new Uint8Array(), {
      timeout: 5000,
    });
    assert.ok(chunk.data.length > 0, 'chunk 0 is served');
    assert.equal(headMsg.headers?.get('Nats-Subject'), 'bundles.east');
  });

  test("an agent's NATS credentials cannot read another cluster's bundle: the server refuses", async () => {
    const head = await permissionRefused(
      nc.request(direct(bundleSubject('west')), new Uint8Array(), { timeout: 5000 }),
    );
    assert.match(head, /bundles\.west/);
    await permissionRefused(
      nc.request(direct(`${bundleSubject('west')}.chunk.0`), new Uint8Array(), { timeout: 5000 }),
    );
    // The connection survives the refusals and still reads its own bundle.
    const own = await nc.request(direct(bundleSubject('east')), new Uint8Array(), { timeout: 5000 });
    assert.equal(JSON.parse(new TextDecoder().decode(own.data)).cluster, 'east');
  });

  test("a direct get of its own subject with a body naming another cluster's message returns nothing of it", async () => {
    const jsm = await hub.jetstreamManager();
    const west = await jsm.streams.getMessage(BUNDLE_STREAM, { last_by_subj: bundleSubject('west') });
    for (const body of [
      { seq: west.seq },
      { last_by_subj: bundleSubject('west') },
      { next_by_subj: 'bundles.>' },
    ]) {
      const m = await nc.request(
        direct(bundleSubject('east')),
        new TextEncoder().encode(JSON.stringify(body)),
        {
          timeout: 5000,
        },
      );
      assert.notEqual(m.headers?.get('Nats-Subject'), bundleSubject('west'), JSON.stringify(body));
      assert.ok(
        m.data.length === 0 || JSON.parse(new TextDecoder().decode(m.data)).cluster !== 'west',
        `${JSON.stringify(body)} returned west's head`,
      );
      assert.ok((m.headers?.code ?? 0) >= 400, `${JSON.stringify(body)} answered ${m.headers?.code}`);
    }
  });

  test("an agent's NATS credentials cannot subscribe to _INBOX.>, $JS.API.>, the bundle stream or another cluster's subjects", async () => {
    for (const subject of ['_INBOX.>', '$JS.API.>', 'bundles.>', 'notify.west', '_INBOX_AG.west.>', '>']) {
      const refusal = await subscriptionRefused(nc, subject);
      assert.match(refusal, /subscription/i, subject);
    }
  });

  test("an agent's NATS credentials cannot use the JetStream API or publish into the bundle stream", async () => {
    const jsm = await hub.jetstreamManager();
    const before = await jsm.streams.info(BUNDLE_STREAM);
    for (const subject of [
      '$JS.API.STREAM.INFO.BUNDLES',
      '$JS.API.STREAM.PURGE.BUNDLES',
      '$JS.API.STREAM.DELETE.BUNDLES',
      '$JS.API.STREAM.MSG.GET.BUNDLES',
      '$JS.API.CONSUMER.CREATE.BUNDLES',
      '$JS.API.INFO',
      bundleSubject('west'),
      bundleSubject('east'),
      'notify.west',
    ]) {
      const refusal = await permissionRefused(
        nc.request(subject, new TextEncoder().encode('{}'), { timeout: 5000 }),
      );
      assert.match(refusal, /publish/i, subject);
    }
    const afterInfo = await jsm.streams.info(BUNDLE_STREAM);
    assert.equal(afterInfo.state.last_seq, before.state.last_seq, 'nothing reached the stream');
    assert.equal(afterInfo.state.messages, before.state.messages);
  });

  test('a join token used a second time is refused and appears in the audit log with a non-ok outcome', async () => {
    const c = fleet.clusters.get('west')!;
    const [cmd, ...args] = splitCommand(c.joinCommand);
    assert.equal(cmd, 'npx');
    assert.equal(args[0], 'flotilla-agent');
    const stateDir = mkdtempSync(join(fleet.baseDir, 'second-join-'));
    const again = await runCli(cmd!, [...args, '--state-dir', stateDir, '--kubeconfig', c.kubeconfig]);
    assert.notEqual(again.code, 0, 'second join must fail');
    assert.match(again.stderr, /join refused: bootstrap token is invalid, already used or expired/);
    assert.doesNotMatch(again.stderr + again.stdout, new RegExp(c.token), 'the token is not echoed back');
    const refused = (await audit()).find(
      (e) => e.action === 'agent.register' && e.cluster === 'west' && e.outcome !== 'ok',
    );
    assert.ok(refused, JSON.stringify(await audit()));
    assert.equal(refused.outcome, 'refused');
    assert.match(refused.detail ?? '', /already used/);
    // The running agent keeps its identity and stays connected.
    assert.equal(readIdentity(c.stateDir).cluster, 'west');
    await fleet.waitSynced(['west']);
  });

  test('a join token added with --ttl 1s and used after 2s is refused as expired, and audited so', async () => {
    const added = await fleet.flotillaJson<{ name: string; token: string; joinCommand: string }>(
      'cluster',
      'add',
      'late',
      '--env',
      'dev',
      '--ttl',
      '1s',
    );
    await new Promise((r) => setTimeout(r, 2000));
    const [cmd, ...args] = splitCommand(added.joinCommand);
    const stateDir = mkdtempSync(join(fleet.baseDir, 'late-join-'));
    const r = await runCli(cmd!, [...args, '--state-dir', stateDir]);
    assert.notEqual(r.code, 0, 'an expired token must not join');
    assert.match(r.stderr, /join refused/);
    const entry = (await audit()).find((e) => e.action === 'agent.register' && e.cluster === 'late');
    assert.ok(entry, JSON.stringify(await audit()));
    assert.equal(entry.outcome, 'refused');
    assert.match(entry.detail ?? '', /expired/);
    const rm = await fleet.flotilla('cluster', 'remove', 'late');
    assert.equal(rm.code, 0, rm.stderr);
  });

  test("cluster remove closes the removed agent's NATS connection, refuses new ones and ends its status stream", async () => {
    await fleet.addCluster({ name: 'gone', environment: 'dev' });
    await fleet.joinAgent('gone');
    const agent = await fleet.startAgent('gone');
    await fleet.waitSynced(['gone']);
    const gone = fleet.clusters.get('gone')!;
    const identity = readIdentity(gone.stateDir);
    const own = await connectAsAgent(identity);
    const head = await own.request(direct(bundleSubject('gone')), new Uint8Array(), { timeout: 5000 });
    assert.equal(JSON.parse(new TextDecoder().decode(head.data)).cluster, 'gone');
    const closed = own.closed();

    const rm = await fleet.flotilla('cluster', 'remove', 'gone');
    assert.equal(rm.code, 0, rm.stderr);

    const why = await within(closed, 20_000, "the server closing the removed cluster's connection");
    assert.match(String(why), /revoked|authori[sz]ation/i, 'the server closed it for the revocation');
    await assert.rejects(
      connectAsAgent(identity),
      /authori[sz]ation|revoked/i,
      'a new connection is refused',
    );

    // The running agent process loses both of its channels; it says so and keeps running.
    await eventually(
      () => {
        assert.match(agent.log, /"msg":"NATS connection closed; reconnecting"/);
        assert.match(agent.log, /UNAUTHENTICATED: agent credential (revoked|is unknown, revoked or expired)/);
      },
      { timeoutMs: 30_000, message: 'the removed agent reports its refused NATS and status stream' },
    );
    assert.ok(agent.alive, 'the agent keeps running (and enforcing what it has)');
    assert.match(
      fleet.hub.process.log,
      /status stream refused: unknown, revoked or expired agent credential/,
    );
    const entry = (await audit()).find((e) => e.action === 'cluster.remove' && e.cluster === 'gone');
    assert.equal(entry?.outcome, 'ok');
    assert.match(entry?.detail ?? '', /revoked 1 agent credential/);
    assert.doesNotMatch(entry?.detail ?? '', /not yet pushed/);
    const rows = await fleet.fleetStatus();
    assert.equal(
      rows.find((r) => r.name === 'gone'),
      undefined,
      'a removed cluster leaves the fleet view',
    );
    // Its objects are left as they are: removing a cluster from the fleet deletes nothing in it.
    const d = await kubectlJson(gone.kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web']);
    assert.equal(d.spec.replicas, 2);
    // Its signed bundles (its Secrets included) are purged from the stream and the hub's records:
    // added again under the same name, it starts afresh and a fresh agent gets nothing of the old.
    const hub = await connectAsHub(fleet);
    try {
      await assert.rejects(readPublishedBundle(hub, 'gone'), /no message found|not found/i);
    } finally {
      await hub.close();
    }
    await fleet.addCluster({ name: 'gone', environment: 'nope' });
    await eventually(
      async () => {
        const r = (await fleet.fleetStatus()).find((x) => x.name === 'gone') as
          | (FleetStatusRow & { desiredGeneration: number | null })
          | undefined;
        assert.match(r?.error ?? '', /environment nope is not declared/);
        assert.equal(r?.desiredGeneration, null, 'no bundle of the removed cluster is its desired state');
      },
      { timeoutMs: 30_000, message: 'the re-added cluster has no bundle and says why' },
    );
  });
});
