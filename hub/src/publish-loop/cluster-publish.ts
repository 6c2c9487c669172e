import {
  canonicalJson,
  contentDigest,
  errorMessage,
  type KubeObject,
  type Logger,
  sha256Digest,
} from '@flotilla/shared';
import type {
  BundleHead,
  BundlePublisher,
  PublishOutcome,
  PublishRequest,
} from '../bundles/publish-cluster.js';
import {
  type AppConfig,
  type EnvironmentConfig,
  FLEET_CONFIG_FILE,
  selectApps,
  selectTarget,
} from '../config/index.js';
import type { Renderer, RenderPlan } from '../render/index.js';
import { clusterPolicy } from '../rollout/windows.js';
import { mapConcurrent } from '../util/concurrent.js';

/** What flotilla.yaml says beyond the environment that can reach a cluster of it. */
export interface FleetTargeting {
  /** The fleet-wide apps whose environment list admits this environment; their selectors decide per cluster. */
  apps: AppConfig[];
  /** Every declared environment (an app's shared directory leaves their subdirectories out). */
  environments: string[];
}

/** One cluster of a pass: what to render it from. */
export interface ClusterWork {
  cluster: { name: string; environment: string; labels: Record<string, string> };
  env: EnvironmentConfig;
  branch: string;
  commit: string;
  /** Absent: the environment's directory only. */
  fleet?: FleetTargeting;
}

/** A cluster of a pass: published (or unchanged), failed, or held by the publish gate with the reason. */
export type ClusterOutcome =
  | PublishOutcome
  | { cluster: string; error: string }
  | { cluster: string; held: string };

/** A render that differs from the cluster's newest bundle, as the publish gate reviews it. */
export interface ReviewRequest {
  work: ClusterWork;
  objects: readonly KubeObject[];
  /** contentDigest of the render with the environment's policy. */
  digest: string;
  head: BundleHead | undefined;
}

/**
 * Decides what a pass may publish (rollout/: pause, waves, blast radius). Without one every
 * changed cluster gets its new bundle.
 */
export interface PublishGate {
  /** Before rendering: the clusters of a pass that get no new bundle now, with the reason. */
  hold(work: ClusterWork[], heads: ReadonlyMap<string, BundleHead>): Promise<Map<string, string>>;
  /** After rendering, for renders that differ from the newest bundle: a reason to hold each, or undefined. */
  review(requests: ReviewRequest[]): Promise<Array<string | undefined>>;
  /** Holds recorded by review, for the clusters another hub replica published in a shared pass. */
  heldNow(clusters: string[]): Promise<Map<string, string>>;
}

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
  gate?: PublishGate;
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
      // Labels are read when the cluster is planned: a cluster labelled into a group or an app gets it now.
      const planned = await renderer.plan(
        commit,
        env,
        { name: cluster.name, environment: cluster.environment, labels: cluster.labels },
        {
          target: selectTarget(env.targets, cluster),
          apps: selectApps(work.fleet?.apps, cluster),
          environments: work.fleet?.environments ?? [],
        },
      );
      const inputKey = sha256Digest(
        `${planned.inputKey}
${canonicalJson(clusterPolicy(env, cluster.labels))}`,
      );
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
    const requests: Array<PublishRequest & { index: number; digest: string }> = [];
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
        const policy = clusterPolicy(env, cluster.labels);
        requests.push({
          index,
          cluster,
          render: { ...rendered, inputKey: planned.inputKey },
          env: { name: env.name, branch, policy },
          head: planned.head,
          // Computed once: the gate and the publisher both need it.
          digest: contentDigest(rendered.objects, policy),
        });
      } catch (err) {
        outcomes[index] = { cluster: cluster.name, error: errorMessage(err) };
      }
    });
    if (requests.length > 0 && options.gate) {
      const reviews: Array<ReviewRequest & { index: number }> = [];
      for (const r of requests) {
        const digest = r.digest;
        if (digest !== r.head?.contentDigest)
          reviews.push({
            index: r.index,
            work: batch[r.index]!,
            objects: r.render.objects,
            digest,
            head: r.head,
          });
      }
      const held = new Map<number, string>();
      try {
        const verdicts = reviews.length > 0 ? await options.gate.review(reviews) : [];
        for (const [i, reason] of verdicts.entries()) if (reason) held.set(reviews[i]!.index, reason);
      } catch (err) {
        // Not knowing whether it is safe is a reason to hold: the cluster keeps its bundle.
        for (const r of reviews) held.set(r.index, `publish gate failed: ${errorMessage(err)}`);
      }
      for (const [index, reason] of held)
        outcomes[index] = { cluster: batch[index]!.cluster.name, held: reason };
      requests.splice(0, requests.length, ...requests.filter((r) => !held.has(r.index)));
    }
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
