import type { KubeObject } from '@flotilla/shared';
import type { HealthState } from './types.js';

/** A health verdict and why; the reason is always set, so status never shows a bare state. */
export interface HealthResult {
  health: HealthState;
  reason: string;
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

type Rule = (obj: Obj) => HealthResult;
type Obj = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

/** Container waiting reasons that mean the workload will not start without a change. */
const FATAL_WAITING = new Set([
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

const healthy = (reason: string): HealthResult => ({ health: 'Healthy', reason });
const progressing = (reason: string): HealthResult => ({ health: 'Progressing', reason });
const degraded = (reason: string): HealthResult => ({ health: 'Degraded', reason });

function num(v: unknown, fallback = 0): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

function conditions(obj: Obj): Condition[] {
  const c = obj.status?.conditions;
  return Array.isArray(c) ? (c as Condition[]) : [];
}

function condition(obj: Obj, type: string): Condition | undefined {
  return conditions(obj).find((c) => c.type === type);
}

function explain(c: Condition): string {
  return [c.reason, c.message].filter(Boolean).join(': ') || `${c.type}=${c.status}`;
}

/** A controller that has not yet seen the latest spec says nothing about it yet. */
function notObserved(obj: Obj): HealthResult | undefined {
  const generation = obj.metadata.generation;
  const observed = obj.status?.observedGeneration;
  if (typeof generation === 'number' && (typeof observed !== 'number' || observed < generation)) {
    return progressing(`waiting for the controller to observe generation ${generation}`);
  }
  return undefined;
}

const deployment: Rule = (obj) => {
  const pending = notObserved(obj);
  if (pending) return pending;
  const progress = condition(obj, 'Progressing');
  if (progress?.reason === 'ProgressDeadlineExceeded') {
    return degraded(`rollout failed: ${explain(progress)}`);
  }
  const want = num(obj.spec?.replicas, 1);
  const s = obj.status ?? {};
  const updated = num(s.updatedReplicas);
  const total = num(s.replicas);
  const available = num(s.availableReplicas);
  if (updated < want) return progressing(`${updated} of ${want} replicas updated`);
  if (total > updated) return progressing(`${total - updated} old replicas pending termination`);
  if (available < updated) return progressing(`${available} of ${updated} updated replicas available`);
  return healthy(`${available} of ${want} replicas available`);
};

const statefulSet: Rule = (obj) => {
  const pending = notObserved(obj);
  if (pending) return pending;
  const want = num(obj.spec?.replicas, 1);
  const s = obj.status ?? {};
  const ready = num(s.readyReplicas);
  if (ready < want) return progressing(`${ready} of ${want} replicas ready`);
  const strategy = (obj.spec?.updateStrategy as { type?: string } | undefined)?.type ?? 'RollingUpdate';
  if (strategy === 'RollingUpdate') {
    const updated = num(s.updatedReplicas, want);
    if (updated < want) return progressing(`${updated} of ${want} replicas updated`);
    if (s.updateRevision && s.currentRevision && s.updateRevision !== s.currentRevision) {
      return progressing(`rolling out revision ${String(s.updateRevision)}`);
    }
  }
  return healthy(`${ready} of ${want} replicas ready`);
};

const daemonSet: Rule = (obj) => {
  const pending = notObserved(obj);
  if (pending) return pending;
  const s = obj.status ?? {};
  const want = num(s.desiredNumberScheduled);
  const updated = num(s.updatedNumberScheduled, want);
  const available = num(s.numberAvailable);
  if (updated < want) return progressing(`${updated} of ${want} pods updated`);
  if (available < want) return progressing(`${available} of ${want} pods available`);
  return healthy(`${available} of ${want} pods available`);
};

const replicaSet: Rule = (obj) => {
  const pending = notObserved(obj);
  if (pending) return pending;
  const failure = condition(obj, 'ReplicaFailure');
  if (failure?.status === 'True') return degraded(`replica failure: ${explain(failure)}`);
  const want = num(obj.spec?.replicas, 1);
  const available = num(obj.status?.availableReplicas);
  if (available < want) return progressing(`${available} of ${want} replicas available`);
  return healthy(`${available} of ${want} replicas available`);
};

const job: Rule = (obj) => {
  const failed = condition(obj, 'Failed');
  if (failed?.status === 'True') return degraded(`job failed: ${explain(failed)}`);
  const complete = condition(obj, 'Complete');
  if (complete?.status === 'True') return healthy('job complete');
  if (obj.spec?.suspend === true) return healthy('job suspended');
  return progressing(`job running (${num(obj.status?.active)} active)`);
};

interface ContainerStatus {
  name?: string;
  restartCount?: number;
  ready?: boolean;
  state?: { waiting?: { reason?: string; message?: string }; terminated?: { reason?: string } };
  lastState?: { terminated?: { reason?: string; exitCode?: number } };
}

const pod: Rule = (obj) => {
  const s = obj.status ?? {};
  const phase = typeof s.phase === 'string' ? s.phase : '';
  if (phase === 'Succeeded') return healthy('pod succeeded');
  if (phase === 'Failed') return degraded(`pod failed${s.reason ? `: ${String(s.reason)}` : ''}`);
  const statuses = [
    ...((s.initContainerStatuses as ContainerStatus[] | undefined) ?? []),
    ...((s.containerStatuses as ContainerStatus[] | undefined) ?? []),
  ];
  for (const c of statuses) {
    const waiting = c.state?.waiting;
    if (waiting?.reason && FATAL_WAITING.has(waiting.reason)) {
      return degraded(
        `container ${c.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
      );
    }
    if (num(c.restartCount) > 0 && c.lastState?.terminated && !c.ready) {
      return degraded(`container ${c.name} is restarting (${num(c.restartCount)} restarts)`);
    }
  }
  const ready = condition(obj, 'Ready');
  if (phase === 'Running' && ready?.status === 'True') return healthy('pod running and ready');
  return progressing(
    `pod ${phase || 'pending'}${ready && ready.status !== 'True' ? `, not ready: ${explain(ready)}` : ''}`,
  );
};

const pvc: Rule = (obj) => {
  const phase = obj.status?.phase;
  if (phase === 'Bound') return healthy('volume bound');
  if (phase === 'Lost') return degraded('volume lost');
  return progressing(`volume ${typeof phase === 'string' ? phase.toLowerCase() : 'pending'}`);
};

const service: Rule = (obj) => {
  if (obj.spec?.type !== 'LoadBalancer') return healthy('service exists');
  const ingress = (obj.status?.loadBalancer as { ingress?: unknown[] } | undefined)?.ingress;
  if (Array.isArray(ingress) && ingress.length > 0) return healthy('load balancer ready');
  return progressing('waiting for a load balancer address');
};

const crd: Rule = (obj) => {
  const names = condition(obj, 'NamesAccepted');
  if (names?.status === 'False') return degraded(`names not accepted: ${explain(names)}`);
  const established = condition(obj, 'Established');
  if (established?.status === 'True') return healthy('established');
  return progressing('waiting to be established');
};

const namespace: Rule = (obj) => {
  const phase = obj.status?.phase;
  if (phase === 'Terminating') return progressing('namespace terminating');
  return healthy(`namespace ${typeof phase === 'string' ? phase.toLowerCase() : 'active'}`);
};

/** kstatus-style conditions most controllers and CRDs publish. */
const generic: Rule = (obj) => {
  const stalled = condition(obj, 'Stalled');
  if (stalled?.status === 'True') return degraded(`stalled: ${explain(stalled)}`);
  const reconciling = condition(obj, 'Reconciling');
  if (reconciling?.status === 'True') return progressing(`reconciling: ${explain(reconciling)}`);
  const ready = condition(obj, 'Ready');
  if (ready) {
    const pending = notObserved(obj);
    if (pending && typeof obj.status?.observedGeneration === 'number') return pending;
    if (ready.status === 'True') return healthy(`ready${ready.reason ? `: ${ready.reason}` : ''}`);
    if (ready.status === 'False') return degraded(`not ready: ${explain(ready)}`);
    return progressing(`readiness unknown: ${explain(ready)}`);
  }
  return healthy('exists');
};

/** Rules by `group/Kind`; the core group is empty. */
const RULES: Record<string, Rule> = {
  'apps/Deployment': deployment,
  'apps/StatefulSet': statefulSet,
  'apps/DaemonSet': daemonSet,
  'apps/ReplicaSet': replicaSet,
  'batch/Job': job,
  '/Pod': pod,
  '/PersistentVolumeClaim': pvc,
  '/Service': service,
  'apiextensions.k8s.io/CustomResourceDefinition': crd,
  '/Namespace': namespace,
};

/**
 * The health of a live object (undefined when it does not exist). Pure, so the same rules
 * serve apply, assess and watch; unknown kinds fall back to `status.conditions[type=Ready]`,
 * and are Healthy once they exist when they publish no conditions.
 */
export function assessHealth(live: KubeObject | undefined): HealthResult {
  if (!live) return { health: 'Unknown', reason: 'object does not exist' };
  const apiVersion = typeof live.apiVersion === 'string' ? live.apiVersion : '';
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const rule = RULES[`${group}/${live.kind}`] ?? generic;
  try {
    return rule(live as Obj);
  } catch (err) {
    return { health: 'Unknown', reason: `cannot read status: ${(err as Error).message}` };
  }
}

const ORDER: Record<HealthState, number> = { Healthy: 0, Progressing: 1, Unknown: 2, Degraded: 3 };

/** The worst of several health states (Degraded > Unknown > Progressing > Healthy); Healthy for none. */
export function worstHealth(states: Iterable<HealthState>): HealthState {
  let worst: HealthState = 'Healthy';
  for (const s of states) if (ORDER[s] > ORDER[worst]) worst = s;
  return worst;
}
