import type { KubeApi } from './api.js';
import type { Json } from './json.js';
import type { ResourceType } from './resources.js';
import { isFailingImage, now, templateHash } from './workload-status.js';

/**
 * The Deployment and ReplicaSet controllers of a real cluster, reduced to what GitOps health
 * depends on: a ReplicaSet per pod template (`pod-template-hash`), rolling updates that respect
 * maxSurge and maxUnavailable, Recreate, revisions and revisionHistoryLimit, and the status and
 * conditions the real deployment controller writes (Progressing with NewReplicaSetCreated,
 * ReplicaSetUpdated, NewReplicaSetAvailable or ProgressDeadlineExceeded after
 * progressDeadlineSeconds without progress; Available from maxUnavailable).
 *
 * Pods are not created as objects: each ReplicaSet keeps the birth times of its simulated pods,
 * which become ready `readyDelayMs` after birth (available minReadySeconds later), and never for a
 * failing image (see isFailingImage). So a broken image leaves the new ReplicaSet unready, the old
 * one serving, and `updatedReplicas` below `replicas`, as on a real cluster.
 */
export interface RolloutControllers {
  /** Reconciles a Deployment: its ReplicaSets, their scale, its status. */
  deployment(obj: Json): void;
  /** Reconciles a ReplicaSet's simulated pods and its status. */
  replicaSet(obj: Json): void;
  /** Forgets a deleted ReplicaSet's pods. */
  forget(uid: string): void;
}

export interface RolloutOptions {
  api: KubeApi;
  readyDelayMs: number;
  /** Reconciles the object again after `delayMs`. */
  requeue(typeKey: string, namespace: string | undefined, name: string, delayMs: number): void;
  type(typeKey: string): ResourceType | undefined;
}

const DEPLOYMENTS = 'apps/deployments';
const REPLICASETS = 'apps/replicasets';
const REVISION = 'deployment.kubernetes.io/revision';
const HASH_LABEL = 'pod-template-hash';
/** Annotations the real controller does not copy from a Deployment to its ReplicaSets. */
const NOT_COPIED = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
]);

/** An IntOrString of a rolling update scaled to `total`: percentages round up for surge, down for unavailable. */
function scaled(value: Json, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)%$/.exec(String(value ?? ''));
  if (!m) return Number(value) || 0;
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

function isRolling(d: Json): boolean {
  return (d.spec?.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate';
}

/** maxSurge and maxUnavailable as numbers; both zero resolves maxUnavailable to 1, as the real controller does. */
export function fenceposts(d: Json): { surge: number; unavailable: number } {
  const replicas = d.spec?.replicas ?? 1;
  const ru = d.spec?.strategy?.rollingUpdate ?? {};
  const surge = scaled(ru.maxSurge ?? '25%', replicas, true);
  let unavailable = scaled(ru.maxUnavailable ?? '25%', replicas, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

/** The real controller's MaxUnavailable: what the Available condition tolerates. */
function maxUnavailable(d: Json): number {
  const replicas = d.spec?.replicas ?? 1;
  if (!isRolling(d) || replicas === 0) return 0;
  return Math.min(fenceposts(d).unavailable, replicas);
}

function revisionOf(rs: Json): number {
  return Number(rs.metadata.annotations?.[REVISION] ?? 0) || 0;
}

function controllerUid(obj: Json): string | undefined {
  return (obj.metadata.ownerReferences ?? []).find((r: Json) => r.controller)?.uid;
}

const sum = (items: Json[], f: (x: Json) => number) => items.reduce((n, x) => n + f(x), 0);
const specReplicas = (rs: Json): number => rs.spec?.replicas ?? 1;

/** Go's omitempty on the int32 status counters: zero is not written. */
function dropZeros(status: Json, fields: string[]): Json {
  for (const f of fields) if (!status[f]) delete status[f];
  return status;
}

/**
 * Sets a Deployment condition as deploymentutil.SetDeploymentCondition does: nothing when status
 * and reason are unchanged, lastTransitionTime kept while the status stays, the changed
 * condition moved to the end.
 */
function setCondition(conditions: Json[], next: Json): Json[] {
  const cur = conditions.find((c) => c.type === next.type);
  if (cur && cur.status === next.status && cur.reason === next.reason) return conditions;
  if (cur && cur.status === next.status) next.lastTransitionTime = cur.lastTransitionTime;
  return [...conditions.filter((c) => c.type !== next.type), next];
}

function newCondition(type: string, status: string, reason: string, message: string): Json {
  const t = now();
  return { type, status, lastUpdateTime: t, lastTransitionTime: t, reason, message };
}

export function createRolloutControllers(o: RolloutOptions): RolloutControllers {
  const { api } = o;
  /** Birth times (ms) of each ReplicaSet's simulated pods, by ReplicaSet uid. */
  const pods = new Map<string, number[]>();

  const rsType = () => o.type(REPLICASETS)!;
  const deployType = () => o.type(DEPLOYMENTS)!;

  const ownedReplicaSets = (d: Json): Json[] =>
    api.store
      .values(REPLICASETS, d.metadata.namespace)
      .filter((rs) => controllerUid(rs) === d.metadata.uid && !rs.metadata.deletionTimestamp);

  const scale = (rs: Json, replicas: number, d: Json) => {
    if (specReplicas(rs) === replicas) return;
    const { surge } = isRolling(d) ? fenceposts(d) : { surge: 0 };
    api.writeObject(rsType(), rs.metadata.namespace, rs.metadata.name, (x) => {
      x.spec.replicas = replicas;
      x.metadata.annotations = {
        ...(x.metadata.annotations ?? {}),
        'deployment.kubernetes.io/desired-replicas': String(d.spec.replicas ?? 1),
        'deployment.kubernetes.io/max-replicas': String((d.spec.replicas ?? 1) + surge),
      };
    });
  };

  const createReplicaSet = (d: Json, hash: string, replicas: number, revision: number): void => {
    const { surge } = isRolling(d) ? fenceposts(d) : { surge: 0 };
    const template = structuredClone(d.spec.template ?? {});
    template.metadata ??= {};
    template.metadata.labels = { ...(template.metadata.labels ?? {}), [HASH_LABEL]: hash };
    const selector = structuredClone(d.spec.selector ?? {});
    selector.matchLabels = { ...(selector.matchLabels ?? {}), [HASH_LABEL]: hash };
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
      if (!NOT_COPIED.has(k)) annotations[k] = v as string;
    }
    annotations['deployment.kubernetes.io/desired-replicas'] = String(d.spec.replicas ?? 1);
    annotations['deployment.kubernetes.io/max-replicas'] = String((d.spec.replicas ?? 1) + surge);
    annotations[REVISION] = String(revision);
    const spec: Json = { replicas, selector, template };
    if (d.spec.minReadySeconds) spec.minReadySeconds = d.spec.minReadySeconds;
    api.create(
      rsType(),
      d.metadata.namespace,
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: `${d.metadata.name}-${hash}`,
          namespace: d.metadata.namespace,
          labels: template.metadata.labels,
          annotations,
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              name: d.metadata.name,
              uid: d.metadata.uid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec,
      },
      { fieldManager: 'kube-controller-manager' },
    );
  };

  /** Scales old ReplicaSets down as far as maxUnavailable allows (rolling.go reconcileOldReplicaSets). */
  const scaleDownOld = (d: Json, all: Json[], newRS: Json, olds: Json[]) => {
    const replicas = d.spec.replicas ?? 1;
    if (sum(olds, specReplicas) === 0) return;
    const allPods = sum(all, specReplicas);
    const minAvailable = replicas - fenceposts(d).unavailable;
    const newUnavailable = specReplicas(newRS) - (newRS.status?.availableReplicas ?? 0);
    const maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return;
    const byAge = [...olds].sort((a, b) =>
      String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)),
    );
    const current = new Map(byAge.map((rs) => [rs.metadata.uid, specReplicas(rs)]));
    // first the replicas that are not available anyway
    let cleaned = 0;
    for (const rs of byAge) {
      if (cleaned >= maxScaledDown) break;
      const have = current.get(rs.metadata.uid)!;
      const unhealthy = have - (rs.status?.availableReplicas ?? 0);
      if (have === 0 || unhealthy <= 0) continue;
      const down = Math.min(maxScaledDown - cleaned, unhealthy);
      current.set(rs.metadata.uid, have - down);
      cleaned += down;
    }
    // then available ones, as long as minAvailable stays available
    const available = sum(all, (rs) => rs.status?.availableReplicas ?? 0);
    let budget = available - minAvailable;
    for (const rs of byAge) {
      if (budget <= 0) break;
      const have = current.get(rs.metadata.uid)!;
      const down = Math.min(have, budget);
      if (down <= 0) continue;
      current.set(rs.metadata.uid, have - down);
      budget -= down;
    }
    for (const rs of byAge) scale(rs, current.get(rs.metadata.uid)!, d);
  };

  const cleanupHistory = (d: Json, olds: Json[]) => {
    const limit = d.spec.revisionHistoryLimit ?? 10;
    const idle = olds
      .filter((rs) => specReplicas(rs) === 0 && (rs.status?.replicas ?? 0) === 0)
      .sort((a, b) => revisionOf(a) - revisionOf(b));
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) {
      try {
        api.delete(rsType(), rs.metadata.namespace, rs.metadata.name);
      } catch {
        // already gone
      }
    }
  };

  const deployment = (d: Json): void => {
    const ns = d.metadata.namespace;
    const name = d.metadata.name;
    const replicas = d.spec.replicas ?? 1;
    const hash = templateHash(d.spec.template);
    let all = ownedReplicaSets(d);
    let newRS = all.find((rs) => rs.metadata.labels?.[HASH_LABEL] === hash);
    let olds = all.filter((rs) => rs !== newRS);
    const maxOldRevision = Math.max(0, ...olds.map(revisionOf));
    let created = false;
    if (!d.spec.paused) {
      if (!newRS) {
        const current = sum(all, specReplicas);
        const initial = isRolling(d)
          ? Math.max(0, Math.min(replicas + fenceposts(d).surge - current, replicas))
          : 0;
        createReplicaSet(d, hash, initial, maxOldRevision + 1);
        created = true;
      } else if (revisionOf(newRS) <= maxOldRevision) {
        // a rollback to an older template makes that ReplicaSet the newest revision
        api.writeObject(rsType(), ns, newRS.metadata.name, (x) => {
          x.metadata.annotations = {
            ...(x.metadata.annotations ?? {}),
            [REVISION]: String(maxOldRevision + 1),
          };
        });
      } else if (isRolling(d)) {
        let scaledUp = false;
        if (specReplicas(newRS) > replicas) scale(newRS, replicas, d);
        else if (specReplicas(newRS) < replicas) {
          const room = replicas + fenceposts(d).surge - sum(all, specReplicas);
          const next = Math.min(specReplicas(newRS) + Math.max(0, room), replicas);
          scaledUp = next > specReplicas(newRS);
          scale(newRS, next, d);
        }
        // as rolling.go: a pass that scaled the new ReplicaSet up leaves the old ones to the next pass
        if (!scaledUp) scaleDownOld(d, all, newRS, olds);
      } else {
        // Recreate: every old pod goes before any new one starts
        for (const rs of olds) scale(rs, 0, d);
        if (olds.every((rs) => (rs.status?.replicas ?? 0) === 0)) scale(newRS, replicas, d);
      }
      all = ownedReplicaSets(d);
      newRS = all.find((rs) => rs.metadata.labels?.[HASH_LABEL] === hash);
      olds = all.filter((rs) => rs !== newRS);
      cleanupHistory(d, olds);
      const revision = newRS ? String(revisionOf(newRS)) : undefined;
      if (revision && d.metadata.annotations?.[REVISION] !== revision) {
        api.writeObject(deployType(), ns, name, (x) => {
          x.metadata.annotations = { ...(x.metadata.annotations ?? {}), [REVISION]: revision };
        });
      }
    }
    writeDeploymentStatus(d, all, newRS, created);
  };

  const writeDeploymentStatus = (d: Json, all: Json[], newRS: Json | undefined, created: boolean) => {
    const live = api.store.get(DEPLOYMENTS, d.metadata.namespace, d.metadata.name);
    if (!live) return;
    const old = live.status ?? {};
    const replicas = live.spec.replicas ?? 1;
    const available = sum(all, (rs) => rs.status?.availableReplicas ?? 0);
    const status: Json = dropZeros(
      {
        observedGeneration: live.metadata.generation,
        replicas: sum(all, (rs) => rs.status?.replicas ?? 0),
        updatedReplicas: newRS?.status?.replicas ?? 0,
        readyReplicas: sum(all, (rs) => rs.status?.readyReplicas ?? 0),
        availableReplicas: available,
        unavailableReplicas: Math.max(0, sum(all, specReplicas) - available),
      },
      ['replicas', 'updatedReplicas', 'readyReplicas', 'availableReplicas', 'unavailableReplicas'],
    );
    if (old.collisionCount !== undefined) status.collisionCount = old.collisionCount;
    let conditions: Json[] = structuredClone(old.conditions ?? []);
    const rsName = newRS?.metadata.name ?? `${live.metadata.name}-${templateHash(live.spec.template)}`;
    if (created) {
      conditions = setCondition(
        conditions,
        newCondition('Progressing', 'True', 'NewReplicaSetCreated', `Created new replica set "${rsName}"`),
      );
    }
    conditions = setCondition(
      conditions,
      available >= replicas - maxUnavailable(live)
        ? newCondition(
            'Available',
            'True',
            'MinimumReplicasAvailable',
            'Deployment has minimum availability.',
          )
        : newCondition(
            'Available',
            'False',
            'MinimumReplicasUnavailable',
            'Deployment does not have minimum availability.',
          ),
    );
    const deadline = live.spec.progressDeadlineSeconds;
    const cur = conditions.find((c) => c.type === 'Progressing');
    if (live.spec.paused) {
      if (cur?.reason !== 'DeploymentPaused') {
        conditions = setCondition(
          conditions,
          newCondition('Progressing', 'Unknown', 'DeploymentPaused', 'Deployment is paused'),
        );
      }
    } else if (cur?.reason === 'DeploymentPaused') {
      conditions = setCondition(
        conditions,
        newCondition('Progressing', 'Unknown', 'DeploymentResumed', 'Deployment is resumed'),
      );
    } else if (typeof deadline === 'number' && !created) {
      const isComplete =
        (status.replicas ?? 0) === (status.updatedReplicas ?? 0) && cur?.reason === 'NewReplicaSetAvailable';
      const complete =
        (status.updatedReplicas ?? 0) === replicas &&
        (status.replicas ?? 0) === replicas &&
        (status.availableReplicas ?? 0) === replicas;
      const progressed =
        (status.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0) ||
        (status.replicas ?? 0) - (status.updatedReplicas ?? 0) <
          (old.replicas ?? 0) - (old.updatedReplicas ?? 0) ||
        (status.readyReplicas ?? 0) > (old.readyReplicas ?? 0) ||
        (status.availableReplicas ?? 0) > (old.availableReplicas ?? 0);
      if (!isComplete) {
        if (complete) {
          conditions = setCondition(
            conditions,
            newCondition(
              'Progressing',
              'True',
              'NewReplicaSetAvailable',
              `ReplicaSet "${rsName}" has successfully progressed.`,
            ),
          );
        } else if (progressed) {
          const next = newCondition(
            'Progressing',
            'True',
            'ReplicaSetUpdated',
            `ReplicaSet "${rsName}" is progressing.`,
          );
          if (cur?.status === 'True') next.lastTransitionTime = cur.lastTransitionTime;
          conditions = [...conditions.filter((c) => c.type !== 'Progressing'), next];
        } else if (cur && cur.reason !== 'ProgressDeadlineExceeded') {
          const since = Date.parse(cur.lastUpdateTime ?? cur.lastTransitionTime ?? '');
          const left = since + deadline * 1000 - Date.now();
          if (left <= 0) {
            conditions = setCondition(
              conditions,
              newCondition(
                'Progressing',
                'False',
                'ProgressDeadlineExceeded',
                `ReplicaSet "${rsName}" has timed out progressing.`,
              ),
            );
          } else o.requeue(DEPLOYMENTS, live.metadata.namespace, live.metadata.name, left + 50);
        }
      }
    }
    if (conditions.length > 0) status.conditions = conditions;
    api.writeStatus(deployType(), live.metadata.namespace, live.metadata.name, status);
  };

  const replicaSet = (rs: Json): void => {
    const uid = rs.metadata.uid;
    const want = specReplicas(rs);
    let births = pods.get(uid);
    if (!births) {
      // first sight (or a restart from a state file): pods that were ready count as ready long ago
      const ready = Math.min(rs.status?.readyReplicas ?? 0, want);
      births = Array.from({ length: ready }, () => 0);
    }
    const t = Date.now();
    while (births.length < want) births.push(t);
    // scale-down removes the youngest pods first: they are the least likely to be ready
    births = births.sort((a, b) => a - b).slice(0, want);
    pods.set(uid, births);
    const failing = isFailingImage(rs);
    const minReady = (rs.spec?.minReadySeconds ?? 0) * 1000;
    const ready = failing ? 0 : births.filter((b) => t >= b + o.readyDelayMs).length;
    const available = failing ? 0 : births.filter((b) => t >= b + o.readyDelayMs + minReady).length;
    if (!failing) {
      const pending = births
        .flatMap((b) => [b + o.readyDelayMs, b + o.readyDelayMs + minReady])
        .filter((x) => x > t);
      if (pending.length > 0) {
        o.requeue(REPLICASETS, rs.metadata.namespace, rs.metadata.name, Math.min(...pending) - t + 5);
      }
    }
    const status = dropZeros(
      {
        replicas: want,
        fullyLabeledReplicas: want,
        readyReplicas: ready,
        availableReplicas: available,
        observedGeneration: rs.metadata.generation,
      },
      ['fullyLabeledReplicas', 'readyReplicas', 'availableReplicas'],
    );
    if (rs.status?.conditions) status.conditions = rs.status.conditions;
    api.writeStatus(rsType(), rs.metadata.namespace, rs.metadata.name, status);
  };

  return { deployment, replicaSet, forget: (uid) => pods.delete(uid) };
}
