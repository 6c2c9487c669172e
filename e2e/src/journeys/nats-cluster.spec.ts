import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import type { NatsClusterNode } from '../harness/nats-cluster.js';
import { kubectlJson } from './kubectl.js';

const CLUSTERS = ['dev-1', 'dev-2', 'dev-3'];

interface StreamDetail {
  name: string;
  config?: { num_replicas?: number };
  state?: { messages: number; last_seq: number };
  cluster?: { leader?: string; replicas?: { name: string; current: boolean }[] };
}

/** The BUNDLES stream as one node's monitoring endpoint reports it: no NATS credentials needed. */
async function streamSeenBy(node: NatsClusterNode): Promise<StreamDetail> {
  const res = await fetch(`${node.monitorUrl}/jsz?accounts=true&streams=true&config=true`);
  const jsz = (await res.json()) as { account_details?: { stream_detail?: StreamDetail[] }[] };
  const stream = jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((s) => s.name === 'BUNDLES');
  if (!stream) throw new Error(`${node.name}: no BUNDLES stream in /jsz`);
  return stream;
}

/** The BUNDLES stream as its leader reports it (a follower lists its peers, not itself). */
async function bundleStream(
  nodes: NatsClusterNode[],
): Promise<StreamDetail & { leaderNode: NatsClusterNode }> {
  for (const node of nodes.filter((n) => n.process.alive)) {
    const stream = await streamSeenBy(node);
    if (stream.cluster?.leader === node.name) return { ...stream, leaderNode: node };
  }
  throw new Error('no node leads the BUNDLES stream');
}

/**
 * The architecture at scale on the NATS side: three nats-servers in one JetStream cluster, the
 * BUNDLES stream at R3 (`--bundle-replicas 3`), the real hub given every node's URL, and real
 * agents that are handed the same list at Register. One node dies while the hub publishes a
 * sequence of commits; every agent must still apply every one of them.
 */
describe('NATS as a three-node cluster with BUNDLES at R3: a node dies while bundles are published', {
  timeout: 300_000,
}, () => {
  let fleet: Fleet;
  let nodes: NatsClusterNode[];
  /** The node the second test kills; the third brings it back. */
  let victim: NatsClusterNode | undefined;

  type Row = FleetStatusRow & { desiredGeneration: number | null; desiredRevision: string | null };
  const rows = async (): Promise<Row[]> => {
    const res = await fetch(`${fleet.hub.http}/api/v1/fleet/status`, {
      headers: { authorization: `Bearer ${fleet.adminToken}` },
    });
    assert.ok(res.ok, `fleet status: HTTP ${res.status}`);
    return ((await res.json()) as { clusters: Row[] }).clusters.filter((r) => CLUSTERS.includes(r.name));
  };
  /**
   * Every cluster applied the newest bundle the hub made for it (of `revision`, when given) and
   * is Synced and Healthy. Asked over HTTP: polling the CLI would start a process each time.
   */
  const appliedEverywhere = (revision: string | undefined, message: string) =>
    eventually(
      async () => {
        const now = await rows();
        assert.equal(now.length, CLUSTERS.length);
        for (const r of now) {
          if (revision) assert.equal(r.desiredRevision, revision, `${r.name}: the hub published ${revision}`);
          assert.equal(r.revision, r.desiredRevision, `${r.name}: applied ${r.desiredRevision}`);
          assert.equal(r.generation, r.desiredGeneration, `${r.name}: applied the newest generation`);
          assert.equal(r.sync, 'Synced', `${r.name}: sync`);
          assert.equal(r.health, 'Healthy', `${r.name}: health`);
          assert.ok(r.connected, `${r.name}: connected`);
        }
        return now;
      },
      { timeoutMs: 60_000, intervalMs: 250, message },
    );

  before(async () => {
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': 'environments:\n  - {name: dev, path: environments/dev}\n',
        ...appFiles('dev'),
      },
      clusters: [],
      startAgents: false,
      natsClusterSize: 3,
      hubArgs: ['--bundle-replicas', '3'],
      readyDelayMs: 100,
    });
    nodes = fleet.natsCluster!.nodes;
    // Side by side: each cluster's API server, `cluster add`, join and agent are processes of their own.
    await Promise.all(
      CLUSTERS.map(async (name) => {
        await fleet.addCluster({ name, environment: 'dev' });
        await fleet.joinAgent(name);
        await fleet.startAgent(name);
      }),
    );
    await appliedEverywhere(undefined, 'the first bundle applied on every cluster');
  });
  after(async () => {
    await fleet?.stop();
  });

  test('every agent was handed all three nodes at Register', () => {
    for (const name of CLUSTERS) {
      const identity = JSON.parse(
        readFileSync(join(fleet.clusters.get(name)!.stateDir, 'identity.json'), 'utf8'),
      );
      assert.deepEqual([...identity.nats.servers].sort(), [...fleet.natsCluster!.urls].sort(), name);
    }
  });

  test('the hub makes the BUNDLES stream with a current copy on each of the three nodes', async () => {
    await eventually(async () => {
      const stream = await bundleStream(nodes);
      assert.equal(stream.config?.num_replicas, 3);
      const peers = [stream.cluster?.leader, ...(stream.cluster?.replicas ?? []).map((r) => r.name)];
      assert.deepEqual(peers.sort(), ['n1', 'n2', 'n3']);
      assert.ok(
        stream.cluster?.replicas?.every((r) => r.current),
        'both followers current',
      );
    });
  });

  test('the stream leader is killed during a sequence of commits: every agent applies every commit', async (t) => {
    const start = Object.fromEntries((await rows()).map((r) => [r.name, r.desiredGeneration ?? 0]));
    const commits = 5;
    let revision = '';
    for (let i = 1; i <= commits; i++) {
      const leader = i === 2 ? (await eventually(() => bundleStream(nodes))).leaderNode : undefined;
      revision = await fleet.work.commit(appFiles('dev', { replicas: 2 + i }), `dev: ${2 + i} replicas`);
      const poked = Date.now();
      await fleet.poke();
      if (leader) {
        // Right after the webhook: the hub is fetching, rendering and publishing this commit.
        victim = leader;
        await victim.kill();
      }
      await appliedEverywhere(revision, `commit ${i} of ${commits} applied on every cluster`);
      // Reported, not asserted: how long the fleet took with and without the node.
      t.diagnostic(
        `commit ${i}${leader ? ` (stream leader ${leader.name} killed)` : ''}: webhook → applied on all ${CLUSTERS.length} clusters in ${Date.now() - poked} ms`,
      );
    }
    assert.ok(victim && !victim.process.alive, 'the killed node stayed down for the rest of the sequence');
    const end = await rows();
    for (const r of end) {
      assert.equal(r.desiredGeneration, start[r.name]! + commits, `${r.name}: one new generation per commit`);
    }
    for (const name of CLUSTERS) {
      const deploy = await kubectlJson(fleet.clusters.get(name)!.kubeconfig, [
        '-n',
        'shop',
        'get',
        'deploy',
        'web',
      ]);
      assert.equal(deploy.spec.replicas, 2 + commits, `${name}: the last commit's Deployment is live`);
    }
  });

  test('the killed node comes back with its store and catches up: three current copies again', async () => {
    assert.ok(victim, 'a node was killed before');
    await victim.restart();
    await eventually(
      async () => {
        const stream = await bundleStream(nodes);
        const peers = [stream.cluster?.leader, ...(stream.cluster?.replicas ?? []).map((r) => r.name)];
        assert.deepEqual(peers.sort(), ['n1', 'n2', 'n3']);
        assert.ok(
          stream.cluster?.replicas?.every((r) => r.current),
          'both followers current',
        );
      },
      { timeoutMs: 30_000, message: `${victim.name} back in the BUNDLES stream and current` },
    );
  });
});
