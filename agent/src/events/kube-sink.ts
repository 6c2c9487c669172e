import type { KubeConfig } from '@kubernetes/client-node';
import { createKubeClient } from '../kube-client.js';
import type { EventSink } from './recorder.js';

/**
 * Events written through the API server's core/v1 Event API, with the verbs the agent's role
 * grants for them and nothing else: create, and a merge patch of count and lastTimestamp.
 * core/v1 rather than events.k8s.io/v1 (as client-go's record package and Flux do): it is what
 * `kubectl describe` and `kubectl get events` read, and it keeps messages past 1024 characters.
 */
export function createKubeEventSink(kubeConfig: KubeConfig): EventSink {
  const kube = createKubeClient(kubeConfig);
  const events = (namespace: string | undefined) =>
    `/api/v1/namespaces/${encodeURIComponent(namespace || kube.defaultNamespace)}/events`;
  return {
    async create(event) {
      await kube.request('POST', events(event.metadata.namespace), { body: event });
    },
    async patch(namespace, name, patch) {
      await kube.request('PATCH', `${events(namespace)}/${encodeURIComponent(name)}`, {
        body: { apiVersion: 'v1', kind: 'Event', metadata: { name, namespace }, ...patch },
        contentType: 'application/merge-patch+json',
      });
    },
  };
}
