import { canonicalJson, errorMessage, type Logger, sha256Digest } from '@flotilla/shared';
import type {
  BundleHead,
  BundlePublisher,
  PublishOutcome,
  PublishRequest,
} from '../bundles/publish-cluster.js';
import { type EnvironmentConfig, FLEET_CONFIG_FILE } from '../config/index.js';
import type { Renderer, RenderPlan } from '../render/index.js';
import { mapConcurrent } from '../util/concurrent.js';

/** One cluster of a pass: what to render it from. */
export interface ClusterWork {
  cluster: { name: string; environment: string; labels: Record<string, string> };
  env: EnvironmentConfig;
  branch: string;
  commit: string;
}

export type ClusterOutcome = PublishOutcome | { cluster: string; error: string };

/** A cluster's plan: either already published (its outcome) or to render, with its key. */
export type PlannedCluster =
  | { done: ClusterOutcome }
  | { done?: undefined; plan: RenderPlan; inputKey: string; head: BundleHead | undefined };

export interface ClusterPublishing {
  /** Collects one cluster's render inputs and decides whether its newest bundle already has them. */
  plan(work: ClusterWork, head: BundleHead | undefined): Promise<PlannedCluster>;
  /** Plans, renders and publishes a batch of clusters; outcomes in the batch's order. */
  publish(batch: ClusterWork[], heads: ReadonlyMap<string, BundleHead>): Promise<ClusterOutcome[]>;
}

export interface ClusterPublishingOptions {
  renderer: Renderer;
  publisher: BundlePublisher;
  logger: Logger;
  /** Renders in flight at once. */
  concurrency: number;
}

/**
 * Render → sign → store → publish for a batch of clusters, shared by a pass run on one hub
 * and by the replicas that take a pass's work from the queue. A cluster whose newest bundle
 * was made from the same inputs (render input key and policy) is skipped before rendering:
 * an unchanged commit costs a few in-memory tree reads per cluster.
 */
export function createClusterPublishing(options: ClusterPublishingOptions): ClusterPublishing {
  const { renderer, publisher, logger } = options;

  async function plan(work: ClusterWork, head: BundleHead | undefined): Promise<PlannedCluster> {
    const { cluster, env, commit } = work;
    try {
      const planned = await renderer.plan(commit, env, {
        name: cluster.name,
        environment: cluster.environment,
        labels: cluster.labels,
      });
      const inputKey = sha256Digest(`${planned.inputKey}\n${canonicalJson(env.policy)}`);
      if (head?.published && head.inputKey === inputKey)
        return {
          done: {
            cluster: cluster.name,
            published: false,
            generation: head.generation,
            digest: head.contentDigest,
          },
        };
      return { plan: planned, inputKey, head };
    } catch (err) {
      return { done: { cluster: cluster.name, error: errorMessage(err) } };
    }
  }

  async function publish(
    batch: ClusterWork[],
    heads: ReadonlyMap<string, BundleHead>,
  ): Promise<ClusterOutcome[]> {
    const outcomes = new Array<ClusterOutcome>(batch.length);
    const requests: Array<PublishRequest & { index: number }> = [];
    await mapConcurrent([...batch.entries()], options.concurrency, async ([index, work]) => {
      const { cluster, env, branch } = work;
      const planned = await plan(work, heads.get(cluster.name));
      if (planned.done) {
        outcomes[index] = planned.done;
        return;
      }
      try {
        const rendered = await planned.plan.render();
        if (rendered.objects.length === 0 && !env.policy.allowEmpty)
          throw new Error(
            `environment ${env.name}: ${env.path} renders no objects; the last good bundle stays (an empty bundle would prune everything: set policy allowEmpty: true in ${FLEET_CONFIG_FILE} if that is meant)`,
          );
        requests.push({
          index,
          cluster,
          render: { ...rendered, inputKey: planned.inputKey },
          env: { name: env.name, branch, policy: env.policy },
          head: planned.head,
        });
      } catch (err) {
        outcomes[index] = { cluster: cluster.name, error: errorMessage(err) };
      }
    });
    if (requests.length > 0) {
      try {
        const published = await publisher.publishClusters(requests);
        for (const [i, outcome] of published.entries()) outcomes[requests[i]!.index] = outcome;
      } catch (err) {
        // The database failing mid-batch: every cluster of it keeps its last good bundle.
        for (const r of requests) outcomes[r.index] = { cluster: r.cluster.name, error: errorMessage(err) };
      }
    }
    for (const outcome of outcomes)
      if ('error' in outcome)
        logger.warn(
          { cluster: outcome.cluster, err: outcome.error },
          'cluster not rendered or not published; it keeps its last good bundle',
        );
    return outcomes;
  }

  return { plan, publish };
}
