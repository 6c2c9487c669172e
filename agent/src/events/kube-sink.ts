import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import type { EventSink } from './recorder.js';

/**
 * Events written through the API server's core/v1 Event API, with the verbs the agent's role
 * grants for them and nothing else: create, and a merge patch of count and lastTimestamp.
 * core/v1 rather than events.k8s.io/v1 (as client-go's record package and Flux do): it is what
 * `kubectl describe` and `kubectl get events` read, and it keeps messages past 1024 characters.
 */
export function createKubeEventSink(kubeConfig: KubeConfig): EventSink {
  const api = KubernetesObjectApi.makeApiClient(kubeConfig);
  return {
    async create(event) {
      await api.create(event as unknown as KubernetesObject);
    },
    async patch(namespace, name, patch) {
      await api.patch(
        { apiVersion: 'v1', kind: 'Event', metadata: { name, namespace }, ...patch } as KubernetesObject,
        undefined,
        undefined,
        undefined,
        undefined,
        PatchStrategy.MergePatch,
      );
    },
  };
}
