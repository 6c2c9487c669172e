import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeObject } from '@flotilla/shared';
import { assessHealth, worstHealth } from './health.js';

function obj(
  apiVersion: string,
  kind: string,
  rest: Record<string, unknown> = {},
  generation?: number,
): KubeObject {
  return {
    apiVersion,
    kind,
    metadata: { name: 'x', namespace: 'ns', ...(generation ? { generation } : {}) },
    ...rest,
  };
}

const deploy = (spec: Record<string, unknown>, status: Record<string, unknown>, generation = 2) =>
  obj('apps/v1', 'Deployment', { spec, status }, generation);

describe('health', () => {
  test('a missing object is Unknown with a reason', () => {
    assert.deepEqual(assessHealth(undefined), { health: 'Unknown', reason: 'object does not exist' });
  });

  test('Deployment: Progressing until the controller observes the generation', () => {
    const r = assessHealth(deploy({ replicas: 2 }, { observedGeneration: 1, availableReplicas: 2 }));
    assert.equal(r.health, 'Progressing');
    assert.match(r.reason, /generation 2/);
  });

  test('Deployment: Progressing while replicas roll out, Healthy once all are available', () => {
    const spec = { replicas: 3 };
    assert.equal(
      assessHealth(deploy(spec, { observedGeneration: 2, updatedReplicas: 1, replicas: 3 })).health,
      'Progressing',
    );
    assert.equal(
      assessHealth(
        deploy(spec, { observedGeneration: 2, updatedReplicas: 3, replicas: 4, availableReplicas: 3 }),
      ).health,
      'Progressing',
    );
    assert.equal(
      assessHealth(
        deploy(spec, { observedGeneration: 2, updatedReplicas: 3, replicas: 3, availableReplicas: 2 }),
      ).health,
      'Progressing',
    );
    const ok = assessHealth(
      deploy(spec, { observedGeneration: 2, updatedReplicas: 3, replicas: 3, availableReplicas: 3 }),
    );
    assert.deepEqual(ok, { health: 'Healthy', reason: '3 of 3 replicas available' });
  });

  test('Deployment: ProgressDeadlineExceeded is Degraded', () => {
    const r = assessHealth(
      deploy(
        { replicas: 1 },
        {
          observedGeneration: 2,
          conditions: [
            {
              type: 'Progressing',
              status: 'False',
              reason: 'ProgressDeadlineExceeded',
              message: 'timed out',
            },
          ],
        },
      ),
    );
    assert.equal(r.health, 'Degraded');
    assert.match(r.reason, /ProgressDeadlineExceeded: timed out/);
  });

  test('Deployment: replicas default to 1 and zero replicas are Healthy', () => {
    assert.equal(assessHealth(deploy({}, { observedGeneration: 2 })).health, 'Progressing');
    assert.equal(assessHealth(deploy({ replicas: 0 }, { observedGeneration: 2 })).health, 'Healthy');
  });

  test('StatefulSet: ready replicas and revisions decide', () => {
    const sts = (status: Record<string, unknown>) =>
      obj(
        'apps/v1',
        'StatefulSet',
        { spec: { replicas: 2 }, status: { observedGeneration: 1, ...status } },
        1,
      );
    assert.equal(assessHealth(sts({ readyReplicas: 1 })).health, 'Progressing');
    assert.equal(
      assessHealth(sts({ readyReplicas: 2, updatedReplicas: 2, currentRevision: 'a', updateRevision: 'b' }))
        .health,
      'Progressing',
    );
    assert.equal(
      assessHealth(sts({ readyReplicas: 2, updatedReplicas: 2, currentRevision: 'b', updateRevision: 'b' }))
        .health,
      'Healthy',
    );
  });

  test('DaemonSet: every scheduled pod updated and available', () => {
    const ds = (status: Record<string, unknown>) =>
      obj('apps/v1', 'DaemonSet', { status: { observedGeneration: 1, ...status } }, 1);
    assert.equal(
      assessHealth(ds({ desiredNumberScheduled: 3, updatedNumberScheduled: 2, numberAvailable: 2 })).health,
      'Progressing',
    );
    assert.equal(
      assessHealth(ds({ desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2 })).health,
      'Progressing',
    );
    assert.equal(
      assessHealth(ds({ desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 })).health,
      'Healthy',
    );
  });

  test('ReplicaSet: available replicas, ReplicaFailure is Degraded', () => {
    const rs = (status: Record<string, unknown>) =>
      obj(
        'apps/v1',
        'ReplicaSet',
        { spec: { replicas: 2 }, status: { observedGeneration: 1, ...status } },
        1,
      );
    assert.equal(assessHealth(rs({ availableReplicas: 1 })).health, 'Progressing');
    assert.equal(assessHealth(rs({ availableReplicas: 2 })).health, 'Healthy');
    assert.equal(
      assessHealth(rs({ conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate' }] }))
        .health,
      'Degraded',
    );
  });

  test('Job: Complete is Healthy, Failed is Degraded, otherwise Progressing', () => {
    const job = (conditions: unknown[]) => obj('batch/v1', 'Job', { status: { conditions, active: 1 } });
    assert.equal(assessHealth(job([])).health, 'Progressing');
    assert.equal(assessHealth(job([{ type: 'Complete', status: 'True' }])).health, 'Healthy');
    const failed = assessHealth(job([{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }]));
    assert.deepEqual(failed, { health: 'Degraded', reason: 'job failed: BackoffLimitExceeded' });
  });

  test('Pod: phase, readiness and crash loops', () => {
    const pod = (status: Record<string, unknown>) => obj('v1', 'Pod', { status });
    assert.equal(assessHealth(pod({ phase: 'Pending' })).health, 'Progressing');
    assert.equal(
      assessHealth(pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] })).health,
      'Healthy',
    );
    assert.equal(
      assessHealth(pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] })).health,
      'Progressing',
    );
    assert.equal(assessHealth(pod({ phase: 'Succeeded' })).health, 'Healthy');
    assert.equal(assessHealth(pod({ phase: 'Failed' })).health, 'Degraded');
    const crash = assessHealth(
      pod({
        phase: 'Running',
        containerStatuses: [
          { name: 'web', restartCount: 5, state: { waiting: { reason: 'CrashLoopBackOff' } } },
        ],
      }),
    );
    assert.deepEqual(crash, { health: 'Degraded', reason: 'container web: CrashLoopBackOff' });
    const pull = assessHealth(
      pod({
        phase: 'Pending',
        containerStatuses: [{ name: 'web', state: { waiting: { reason: 'ImagePullBackOff' } } }],
      }),
    );
    assert.equal(pull.health, 'Degraded');
  });

  test('PersistentVolumeClaim: Bound, Pending, Lost', () => {
    const pvc = (phase: string) => obj('v1', 'PersistentVolumeClaim', { status: { phase } });
    assert.equal(assessHealth(pvc('Bound')).health, 'Healthy');
    assert.equal(assessHealth(pvc('Pending')).health, 'Progressing');
    assert.equal(assessHealth(pvc('Lost')).health, 'Degraded');
  });

  test('Service: a LoadBalancer waits for an ingress address, others are Healthy', () => {
    assert.equal(assessHealth(obj('v1', 'Service', { spec: { type: 'ClusterIP' } })).health, 'Healthy');
    assert.equal(
      assessHealth(obj('v1', 'Service', { spec: { type: 'LoadBalancer' }, status: {} })).health,
      'Progressing',
    );
    assert.equal(
      assessHealth(
        obj('v1', 'Service', {
          spec: { type: 'LoadBalancer' },
          status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } },
        }),
      ).health,
      'Healthy',
    );
  });

  test('CustomResourceDefinition: Established', () => {
    const crd = (conditions: unknown[]) =>
      obj('apiextensions.k8s.io/v1', 'CustomResourceDefinition', { status: { conditions } });
    assert.equal(assessHealth(crd([])).health, 'Progressing');
    assert.equal(assessHealth(crd([{ type: 'Established', status: 'True' }])).health, 'Healthy');
    assert.equal(
      assessHealth(crd([{ type: 'NamesAccepted', status: 'False', reason: 'Conflict' }])).health,
      'Degraded',
    );
  });

  test('Namespace: Active is Healthy, Terminating is Progressing', () => {
    assert.equal(assessHealth(obj('v1', 'Namespace', { status: { phase: 'Active' } })).health, 'Healthy');
    assert.equal(
      assessHealth(obj('v1', 'Namespace', { status: { phase: 'Terminating' } })).health,
      'Progressing',
    );
  });

  test('generic kinds follow status.conditions[type=Ready], and are Healthy once they exist without conditions', () => {
    const cr = (status?: Record<string, unknown>) =>
      obj('example.com/v1', 'Widget', status ? { status } : {});
    assert.deepEqual(assessHealth(cr()), { health: 'Healthy', reason: 'exists' });
    assert.equal(assessHealth(cr({ conditions: [{ type: 'Ready', status: 'True' }] })).health, 'Healthy');
    const notReady = assessHealth(
      cr({ conditions: [{ type: 'Ready', status: 'False', reason: 'BadConfig', message: 'no' }] }),
    );
    assert.deepEqual(notReady, { health: 'Degraded', reason: 'not ready: BadConfig: no' });
    assert.equal(
      assessHealth(cr({ conditions: [{ type: 'Ready', status: 'Unknown' }] })).health,
      'Progressing',
    );
    assert.equal(assessHealth(obj('v1', 'ConfigMap', { data: {} })).health, 'Healthy');
  });

  test('every verdict carries a reason', () => {
    for (const o of [
      deploy({}, {}),
      obj('v1', 'Pod', {}),
      obj('batch/v1', 'Job', {}),
      obj('v1', 'PersistentVolumeClaim', {}),
      obj('example.com/v1', 'Widget', { status: { conditions: 'garbage' } }),
    ]) {
      assert.ok(assessHealth(o).reason.length > 0);
    }
  });

  test('worstHealth ranks Degraded over Unknown over Progressing over Healthy', () => {
    assert.equal(worstHealth([]), 'Healthy');
    assert.equal(worstHealth(['Healthy', 'Progressing']), 'Progressing');
    assert.equal(worstHealth(['Progressing', 'Unknown']), 'Unknown');
    assert.equal(worstHealth(['Unknown', 'Degraded', 'Healthy']), 'Degraded');
  });
});
