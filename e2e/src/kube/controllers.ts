import { type KubeApi, typeKeyOf } from './api.js';
import type { Json } from './json.js';
import type { ResourceType } from './resources.js';
import { createRolloutControllers } from './rollout.js';
import type { StoreEvent } from './store.js';
import { condition, isFailingImage, now, templateHash } from './workload-status.js';

export { isFailingImage } from './workload-status.js';

export interface ControllersOptions {
  /** How long a workload takes to become ready after a change. */
  readyDelayMs: number;
}

/** The node every simulated Pod runs on. */
export const NODE_NAME = 'flotilla-node';

/**
 * Stand-ins for the controllers a real cluster runs, so that health means something in tests:
 * workloads become ready `readyDelayMs` after each spec change (never, for `:fail` images), Jobs
 * complete, PVCs bind, Pods run, CRDs become Established. Status writes go through the API like a
 * controller's, so they bump resourceVersion and reach watchers.
 */
export function startControllers(api: KubeApi, options: ControllersOptions): { stop(): void } {
  const timers = new Map<string, NodeJS.Timeout>();
  /** When each (uid, generation) started progressing. */
  const since = new Map<string, number>();
  const pending = new Set<string>();
  let stopped = false;

  const builtin = (typeKey: string): ResourceType | undefined =>
    api.types().find((t) => !t.custom && typeKeyOf(t) === typeKey);

  const schedule = (typeKey: string, ns: string | undefined, name: string, delayMs = 0) => {
    if (stopped) return;
    const key = `${typeKey}|${ns ?? ''}|${name}`;
    if (delayMs > 0) {
      clearTimeout(timers.get(key));
      timers.set(
        key,
        setTimeout(() => {
          timers.delete(key);
          schedule(typeKey, ns, name);
        }, delayMs),
      );
      return;
    }
    if (pending.has(key)) return;
    pending.add(key);
    setImmediate(() => {
      pending.delete(key);
      if (stopped) return;
      try {
        reconcile(typeKey, ns, name);
      } catch {
        // a controller that fails retries on the next change, as real ones do
      }
    });
  };

  const rollout = createRolloutControllers({
    api,
    readyDelayMs: options.readyDelayMs,
    requeue: schedule,
    type: builtin,
  });

  /** Milliseconds until the workload at this generation is ready (0: ready now). */
  const readyIn = (obj: Json): number => {
    const key = `${obj.metadata.uid}/${obj.metadata.generation}`;
    let start = since.get(key);
    if (start === undefined) {
      start = Date.now();
      since.set(key, start);
    }
    return Math.max(0, start + options.readyDelayMs - Date.now());
  };

  const reconcile = (typeKey: string, ns: string | undefined, name: string) => {
    const type = builtin(typeKey);
    if (!type) return;
    const obj = api.store.get(typeKey, ns, name);
    if (!obj || obj.metadata.deletionTimestamp) return;
    const st = obj.status ?? {};
    const gen = obj.metadata.generation;
    switch (type.kind) {
      case 'CustomResourceDefinition': {
        const storage = (obj.spec.versions ?? []).find((v: Json) => v.storage)?.name;
        api.writeStatus(type, ns, name, {
          conditions: [
            condition(st.conditions, 'NamesAccepted', 'True', 'NoConflicts', 'no conflicts found'),
            condition(
              st.conditions,
              'Established',
              'True',
              'InitialNamesAccepted',
              'the initial names have been accepted',
            ),
          ],
          acceptedNames: {
            plural: obj.spec.names.plural,
            singular: obj.spec.names.singular,
            kind: obj.spec.names.kind,
            listKind: obj.spec.names.listKind,
            ...(obj.spec.names.shortNames ? { shortNames: obj.spec.names.shortNames } : {}),
            ...(obj.spec.names.categories ? { categories: obj.spec.names.categories } : {}),
          },
          storedVersions: [...new Set([...(st.storedVersions ?? []), storage].filter(Boolean))],
        });
        return;
      }
      case 'PersistentVolumeClaim': {
        if (!obj.spec.volumeName) {
          api.writeObject(type, ns, name, (o) => {
            o.spec.volumeName = `pvc-${o.metadata.uid}`;
          });
          return;
        }
        api.writeStatus(type, ns, name, {
          phase: 'Bound',
          accessModes: obj.spec.accessModes ?? ['ReadWriteOnce'],
          capacity: { storage: obj.spec.resources?.requests?.storage ?? '1Gi' },
        });
        return;
      }
      case 'Pod': {
        if (!obj.spec.nodeName) {
          api.writeObject(type, ns, name, (o) => {
            o.spec.nodeName = NODE_NAME;
          });
          return;
        }
        const failing = isFailingImage(obj);
        const wait = readyIn(obj);
        if (wait > 0 && !failing) schedule(typeKey, ns, name, wait + 5);
        const ready = wait === 0 && !failing;
        const startTime = st.startTime ?? now();
        const containers = (obj.spec.containers ?? []).map((c: Json) => ({
          name: c.name,
          image: c.image,
          imageID: ready ? `docker.io/library/${c.image}@sha256:${'0'.repeat(64)}` : '',
          ready,
          started: ready,
          restartCount: 0,
          state: ready
            ? { running: { startedAt: startTime } }
            : failing
              ? { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.image}"` } }
              : { waiting: { reason: 'ContainerCreating' } },
        }));
        const t = ready ? 'True' : 'False';
        api.writeStatus(type, ns, name, {
          phase: ready ? 'Running' : 'Pending',
          conditions: [
            condition(st.conditions, 'PodReadyToStartContainers', t, '', ''),
            condition(st.conditions, 'Initialized', 'True', '', ''),
            condition(
              st.conditions,
              'Ready',
              t,
              ready ? '' : 'ContainersNotReady',
              ready ? '' : 'containers with unready status',
            ),
            condition(
              st.conditions,
              'ContainersReady',
              t,
              ready ? '' : 'ContainersNotReady',
              ready ? '' : 'containers with unready status',
            ),
            condition(st.conditions, 'PodScheduled', 'True', '', ''),
          ].map((c) => {
            if (!c.reason) delete c.reason;
            if (!c.message) delete c.message;
            return c;
          }),
          hostIP: '10.0.0.10',
          hostIPs: [{ ip: '10.0.0.10' }],
          podIP: '10.244.0.10',
          podIPs: [{ ip: '10.244.0.10' }],
          startTime,
          containerStatuses: containers,
          qosClass: 'BestEffort',
        });
        return;
      }
      case 'Deployment':
        rollout.deployment(obj);
        return;
      case 'ReplicaSet':
        rollout.replicaSet(obj);
        return;
      case 'StatefulSet': {
        const replicas = obj.spec.replicas ?? 1;
        const failing = isFailingImage(obj);
        const wait = replicas === 0 ? 0 : readyIn(obj);
        if (wait > 0 && !failing) schedule(typeKey, ns, name, wait + 5);
        const ready = !failing && wait === 0;
        const status: Json = { observedGeneration: gen, replicas };
        if (ready && replicas > 0) {
          status.readyReplicas = replicas;
          status.availableReplicas = replicas;
        } else status.availableReplicas = 0;
        const revision = `${name}-${templateHash(obj.spec?.template)}`;
        status.currentReplicas = ready ? replicas : (st.currentReplicas ?? 0);
        status.updatedReplicas = ready ? replicas : 0;
        status.currentRevision = ready ? revision : (st.currentRevision ?? revision);
        status.updateRevision = revision;
        status.collisionCount = 0;
        api.writeStatus(type, ns, name, status);
        return;
      }
      case 'DaemonSet': {
        const failing = isFailingImage(obj);
        const wait = readyIn(obj);
        if (wait > 0 && !failing) schedule(typeKey, ns, name, wait + 5);
        const ready = !failing && wait === 0;
        const status: Json = {
          currentNumberScheduled: 1,
          desiredNumberScheduled: 1,
          numberMisscheduled: 0,
          numberReady: ready ? 1 : 0,
          observedGeneration: gen,
          updatedNumberScheduled: 1,
        };
        if (ready) status.numberAvailable = 1;
        else status.numberUnavailable = 1;
        api.writeStatus(type, ns, name, status);
        return;
      }
      case 'Job': {
        if (obj.spec.suspend) return;
        if (
          (st.conditions ?? []).some(
            (c: Json) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
          )
        ) {
          return;
        }
        const failing = isFailingImage(obj);
        const wait = readyIn(obj);
        const startTime = st.startTime ?? now();
        if (wait > 0) {
          schedule(typeKey, ns, name, wait + 5);
          api.writeStatus(type, ns, name, {
            startTime,
            active: obj.spec.parallelism ?? 1,
            ready: 0,
            terminating: 0,
            uncountedTerminatedPods: {},
          });
          return;
        }
        if (failing) {
          api.writeStatus(type, ns, name, {
            startTime,
            failed: (obj.spec.backoffLimit ?? 6) + 1,
            ready: 0,
            terminating: 0,
            uncountedTerminatedPods: {},
            conditions: [
              condition(
                st.conditions,
                'FailureTarget',
                'True',
                'BackoffLimitExceeded',
                'Job has reached the specified backoff limit',
              ),
              condition(
                st.conditions,
                'Failed',
                'True',
                'BackoffLimitExceeded',
                'Job has reached the specified backoff limit',
              ),
            ],
          });
          return;
        }
        api.writeStatus(type, ns, name, {
          startTime,
          completionTime: now(),
          succeeded: obj.spec.completions ?? 1,
          ready: 0,
          terminating: 0,
          uncountedTerminatedPods: {},
          conditions: [
            condition(
              st.conditions,
              'SuccessCriteriaMet',
              'True',
              'CompletionsReached',
              'Reached expected number of succeeded pods',
            ),
            condition(
              st.conditions,
              'Complete',
              'True',
              'CompletionsReached',
              'Reached expected number of succeeded pods',
            ),
          ],
        });
        return;
      }
    }
  };

  const WATCHED = new Set([
    'apiextensions.k8s.io/customresourcedefinitions',
    '/persistentvolumeclaims',
    '/pods',
    'apps/deployments',
    'apps/statefulsets',
    'apps/replicasets',
    'apps/daemonsets',
    'batch/jobs',
  ]);

  const unsubscribe = api.store.subscribe((ev: StoreEvent) => {
    if (!WATCHED.has(ev.typeKey)) return;
    if (ev.typeKey === 'apps/replicasets') {
      // a ReplicaSet's change is news for the Deployment that controls it
      const owner = (ev.object.metadata.ownerReferences ?? []).find(
        (r: Json) => r.controller && r.kind === 'Deployment',
      );
      if (owner) schedule('apps/deployments', ev.object.metadata.namespace, owner.name);
      if (ev.type === 'DELETED') rollout.forget(ev.object.metadata.uid);
    }
    if (ev.type === 'DELETED') return;
    schedule(ev.typeKey, ev.object.metadata.namespace, ev.object.metadata.name);
  });
  // objects loaded from a state file get reconciled too
  for (const key of WATCHED) {
    for (const o of api.store.list(key)) schedule(key, o.metadata.namespace, o.metadata.name);
  }

  return {
    stop() {
      stopped = true;
      unsubscribe();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}
