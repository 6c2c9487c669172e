import { InvalidError } from './errors.js';

/** The JetStream stream that holds the latest bundle of every cluster. */
export const BUNDLE_STREAM = 'BUNDLES';

/**
 * Cluster names become single NATS subject tokens and Kubernetes label values: DNS-1123
 * labels only (no `.`, `*`, `>`, spaces), so one cluster can never name another's subject.
 */
const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function assertClusterName(name: string): string {
  if (!CLUSTER_NAME.test(name)) {
    throw new InvalidError(
      'cluster name',
      `"${name}" must be a DNS-1123 label: lower-case letters, digits and '-', at most 63`,
    );
  }
  return name;
}

/** The head message of a cluster's latest bundle (a TransportHead). */
export function bundleSubject(cluster: string): string {
  return `bundles.${assertClusterName(cluster)}`;
}

/** Chunk `index` of the cluster's latest bundle. */
export function bundleChunkSubject(cluster: string, index: number): string {
  return `bundles.${assertClusterName(cluster)}.chunk.${index}`;
}

/** Where the hub says "a new bundle is there"; the payload is advisory only. */
export function notifySubject(cluster: string): string {
  return `notify.${assertClusterName(cluster)}`;
}

/** The only inbox prefix an agent may subscribe to (a whole subject token, as NATS templates need). */
export function agentInboxPrefix(cluster: string): string {
  return `_INBOX_AG.${assertClusterName(cluster)}`;
}

/**
 * The direct-get API subjects an agent may publish to: its own head and chunks, nothing
 * else; also through a JetStream domain (`$JS.<domain>.API…`), which is how a NATS leaf
 * node site reaches the hub's stream. The domain token is the only wildcard: the subjects
 * stay this cluster's own.
 */
export function agentDirectGetSubjects(cluster: string): string[] {
  return [
    `$JS.API.DIRECT.GET.${BUNDLE_STREAM}.${bundleSubject(cluster)}`,
    `$JS.API.DIRECT.GET.${BUNDLE_STREAM}.${bundleSubject(cluster)}.>`,
    `$JS.*.API.DIRECT.GET.${BUNDLE_STREAM}.${bundleSubject(cluster)}`,
    `$JS.*.API.DIRECT.GET.${BUNDLE_STREAM}.${bundleSubject(cluster)}.>`,
  ];
}
