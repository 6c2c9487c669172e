import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually } from '@flotilla/e2e/harness';
import { createLogger, ErrorCode, FlotillaError, type KubeObject } from '@flotilla/shared';
import { eq } from 'drizzle-orm';
import { createAuditLog } from '../audit/audit.js';
import { parseFleetConfig } from '../config/index.js';
import type { Database } from '../db/database.js';
import { auditLog, clusterHolds, clusters, pruneApprovals, rollouts } from '../db/schema.js';
import { openTestDatabase, TEST_DATABASE_KINDS } from '../db/testing.js';
import type { ClusterWork } from '../publish-loop/cluster-publish.js';
import type { FleetClusterStatus } from '../status/fleet-view.js';
import { createPauses } from './pause.js';
import { createRolloutService, type RolloutService } from './rollout-service.js';
import type { RolloutEvent } from './waves.js';

const CONFIG = parseFleetConfig(`environments:
  - name: prod
    path: environments/prod
    policy: {prune: true}
    rollout:
      waves: [{name: canary, selector: ring=canary}, {name: half, percent: 50}]
      soak: 1m
      maxPrune: 50%
  - {name: dev, path: environments/dev, policy: {prune: true}}
pipeline: [dev, prod]
`);
const PROD = ['p1', 'p2', 'p3', 'p4'];
const T0 = new Date('2026-03-01T10:00:00Z');

const configMap = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'shop' },
  data: {},
});

for (const kind of TEST_DATABASE_KINDS) {
  /**
   * The rollout service's database side on a real database: rollout records, holds, approvals
   * and the audit, written by the publish gate and read back by status, resume and approve.
   * The fleet view and the git source are given as data: what the gate decides from them is
   * what is checked.
   */
  describe(`rollout service on ${kind}`, () => {
    let database: Database;
    let service: RolloutService;
    let now = T0;
    const fleet = new Map<string, FleetClusterStatus>();
    const events: Array<{ environment: string; event: RolloutEvent }> = [];
    const triggers: string[] = [];
    const previous = new Map<string, KubeObject[]>();

    /** The fleet view of one cluster: at `generation` of `desired`, Synced and Healthy unless told. */
    const state = (name: string, generation: number | null, over: Partial<FleetClusterStatus> = {}) => {
      const environment = name.startsWith('p') ? 'prod' : 'dev';
      fleet.set(name, {
        name,
        environment,
        labels: {},
        revision: 'r',
        generation,
        phase: 'Synced',
        sync: 'Synced',
        health: 'Healthy',
        drifted: 0,
        error: null,
        connected: true,
        lastSeen: now.toISOString(),
        desiredGeneration: generation,
        desiredRevision: 'r',
        reportedAt: now.toISOString(),
        reportedVia: 'stream',
        healthySince: now.toISOString(),
        paused: null,
        hold: null,
        pendingGeneration: null,
        pendingUntil: null,
        ...over,
      });
    };
    const work = (commit: string, names = [...PROD, 'd1']): ClusterWork[] =>
      names.map((name) => {
        const env = CONFIG.environments.find((e) => e.name === (name.startsWith('p') ? 'prod' : 'dev'))!;
        return {
          cluster: {
            name,
            environment: env.name,
            labels: (name === 'p1' ? { ring: 'canary' } : {}) as Record<string, string>,
          },
          env,
          branch: 'main',
          commit,
        };
      });

    before(async () => {
      database = await openTestDatabase(kind);
      const { db } = database;
      await db
        .insert(clusters)
        .values([
          { name: 'p1', environment: 'prod', labels: { ring: 'canary' } },
          ...['p2', 'p3', 'p4'].map((name) => ({ name, environment: 'prod', labels: {} })),
          { name: 'd1', environment: 'dev', labels: {} },
        ]);
      for (const name of [...PROD, 'd1']) state(name, 1);
      const audit = createAuditLog(db);
      service = createRolloutService({
        db,
        source: {
          treeId: async (commit: string, path: string) => `${commit}:${path}`,
          resolveBranch: async () => 'c0',
          defaultBranch: async () => 'main',
        } as never,
        fleet: { status: async () => [...fleet.values()] },
        pauses: createPauses({ db, audit }),
        audit,
        logger: createLogger({ name: 'test', level: 'silent' }),
        config: async () => CONFIG,
        previousObjects: async (names) =>
          new Map(names.flatMap((c) => (previous.has(c) ? [[c, previous.get(c)!] as const] : []))),
        trigger: async (reason) => {
          triggers.push(reason);
        },
        isLeader: () => true,
        onEvent: (environment, event) => events.push({ environment, event }),
        now: () => now,
      });
    });
    after(async () => {
      await service?.stop();
      await database?.close();
    });

    test('a new commit releases the canary wave only; the rest are held with the wave they wait for, recorded as holds', async () => {
      const holds = await service.gate.hold(work('c1'), new Map());
      assert.deepEqual([...holds.keys()].sort(), ['p2', 'p3', 'p4']);
      assert.match(holds.get('p2')!, /wave 2 \(half\)/);
      assert.equal(holds.has('d1'), false, 'an environment without waves is not held');
      assert.deepEqual(
        events.map((e) => e.event.kind),
        ['started'],
      );
      const [row] = await database.db.select().from(rollouts).where(eq(rollouts.environment, 'prod'));
      assert.equal(row!.commit, 'c1');
      assert.equal(row!.wave, 0);
      assert.deepEqual(row!.released, ['p1']);
      const stored = await database.db.select().from(clusterHolds);
      assert.deepEqual(stored.map((h) => [h.cluster, h.kind]).sort(), [
        ['p2', 'wave'],
        ['p3', 'wave'],
        ['p4', 'wave'],
      ]);
      assert.deepEqual([...(await service.gate.heldNow(['p1', 'p2'])).keys()], ['p2']);
      const status = await service.status('prod');
      assert.equal(status.state, 'rolling');
      assert.deepEqual(
        status.waves.map((w) => [
          w.name,
          w.state,
          w.clusters.map((c) => `${c.name}${c.released ? '+' : ''}`),
        ]),
        [
          ['canary', 'rolling', ['p1+']],
          ['half', 'waiting', ['p2']],
          ['rest', 'waiting', ['p3', 'p4']],
        ],
      );
      // The same pass again changes nothing and announces nothing.
      await service.gate.hold(work('c1'), new Map());
      assert.equal(events.length, 1);
    });

    test('the canary ready at the new generation for the soak time releases the next wave; a Degraded cluster there halts the rollout, once', async () => {
      now = new Date(T0.getTime() + 10_000);
      state('p1', 2, { desiredGeneration: 2 });
      let holds = await service.gate.hold(work('c1'), new Map());
      assert.ok(holds.has('p2'), 'the soak has not passed');
      now = new Date(T0.getTime() + 80_000);
      holds = await service.gate.hold(work('c1'), new Map());
      assert.deepEqual([...holds.keys()].sort(), ['p3', 'p4']);
      assert.equal((await service.status('prod')).waves[0]!.state, 'done');
      assert.deepEqual(
        [...(await service.gate.heldNow(PROD)).keys()].sort(),
        ['p3', 'p4'],
        'released clusters lose their hold',
      );

      state('p2', 2, {
        desiredGeneration: 2,
        health: 'Degraded',
        error: 'apps/v1 Deployment shop/web: ImagePullBackOff',
      });
      await service.gate.hold(work('c1'), new Map());
      await service.gate.hold(work('c1'), new Map());
      const halts = events.filter((e) => e.event.kind === 'halted');
      assert.equal(halts.length, 1, 'halted once');
      const status = await service.status('prod');
      assert.equal(status.state, 'halted');
      assert.equal(status.halted!.cluster, 'p2');
      assert.match(status.halted!.reason, /cluster p2 is Degraded at generation 2/);
      const audits = await database.db.select().from(auditLog).where(eq(auditLog.action, 'rollout.halt'));
      assert.equal(audits.length, 1);
      assert.equal(audits[0]!.cluster, 'p2');
    });

    test('resume goes past the halt and asks for a pass; resuming a rollout that is not halted is a conflict', async () => {
      triggers.length = 0;
      const resumed = await service.resume('prod', 'alice');
      assert.equal(resumed.state, 'rolling');
      assert.deepEqual(
        resumed.waves.map((w) => w.state),
        ['done', 'done', 'rolling'],
      );
      assert.deepEqual(triggers, ['rollout resume prod']);
      const [audit] = await database.db.select().from(auditLog).where(eq(auditLog.action, 'rollout.resume'));
      assert.equal(audit!.actor, 'alice');
      await assert.rejects(service.resume('prod', 'alice'), (err: unknown) => {
        assert.ok(err instanceof FlotillaError);
        assert.equal(err.code, ErrorCode.Conflict);
        return true;
      });
      await assert.rejects(service.status('nope'), /environment nope: not in flotilla.yaml/);
    });

    test('a paused cluster is held with its pause and not recorded as a wave hold', async () => {
      const { db } = database;
      await createPauses({ db, audit: createAuditLog(db) }).pause({ cluster: 'd1' }, 'site rebuild', 'bob');
      const holds = await service.gate.hold(work('c1'), new Map());
      assert.match(holds.get('d1')!, /paused by bob \(site rebuild\)/);
      const [row] = await db.select().from(clusterHolds).where(eq(clusterHolds.cluster, 'd1'));
      assert.equal(row, undefined);
    });

    test('a render that prunes past maxPrune is held with its digest until approved; the approval covers that render only', async () => {
      previous.set('p4', ['a', 'b', 'c', 'd', 'e'].map(configMap));
      const request = (digest: string) => ({
        work: work('c1', ['p4'])[0]!,
        objects: [configMap('a')],
        digest,
        head: { generation: 2, contentDigest: 'old', inputKey: null, published: true },
      });
      const [reason] = await service.gate.review([request('sha256:one')]);
      assert.match(
        reason!,
        /would prune 4 of the 5 objects of cluster p4 \(80%\), more than rollout.maxPrune 50%/,
      );
      const [hold] = await database.db.select().from(clusterHolds).where(eq(clusterHolds.cluster, 'p4'));
      assert.deepEqual([hold!.kind, hold!.digest], ['blast-radius', 'sha256:one']);

      assert.deepEqual(await service.approve('p4', 'carol'), { cluster: 'p4', digest: 'sha256:one' });
      const approvals = await database.db.select().from(pruneApprovals);
      assert.deepEqual(
        approvals.map((a) => [a.cluster, a.digest, a.actor]),
        [['p4', 'sha256:one', 'carol']],
      );
      assert.deepEqual(await service.gate.review([request('sha256:one')]), [undefined]);
      assert.equal(
        (await database.db.select().from(clusterHolds).where(eq(clusterHolds.cluster, 'p4'))).length,
        0,
      );
      const [again] = await service.gate.review([request('sha256:two')]);
      assert.ok(again, 'another render that prunes as much is held again');
      await assert.rejects(service.approve('p1', 'carol'), /cluster p1: no bundle held for its blast radius/);
    });

    test('the tick asks for a pass when a wave may start; a new commit starts the rollout over', async () => {
      triggers.length = 0;
      state('p3', 2, { desiredGeneration: 2 });
      state('p4', 2, { desiredGeneration: 2 });
      // The rest wave is released and ready for the soak time: the rollout completes on the next pass.
      now = new Date(now.getTime() + 120_000);
      await service.gate.hold(work('c1'), new Map());
      events.length = 0;
      const holds = await service.gate.hold(work('c2'), new Map());
      assert.deepEqual(
        events.map((e) => e.event.kind),
        ['started'],
      );
      assert.deepEqual([...holds.keys()].sort(), ['d1', 'p2', 'p3', 'p4']);
      state('p1', 3, { desiredGeneration: 3, healthySince: now.toISOString() });
      now = new Date(now.getTime() + 61_000);
      service.start();
      await eventually(
        () => assert.ok(triggers.includes('rollout'), `the tick asked for a pass (${triggers.join(', ')})`),
        { timeoutMs: 10_000, intervalMs: 100, message: 'the tick triggers a pass' },
      );
      await service.stop();
    });
  });
}
