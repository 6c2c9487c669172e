import { errorMessage, type Logger } from '@flotilla/shared';
import type { BundlePublisher, PublishOutcome } from '../bundles/publish-cluster.js';
import {
  type EnvironmentConfig,
  FLEET_CONFIG_FILE,
  type FleetConfig,
  parseFleetConfig,
} from '../config/index.js';
import type { Db } from '../db/database.js';
import { clusters as clustersTable } from '../db/schema.js';
import type { Renderer } from '../render/index.js';
import type { GitSource } from '../source/index.js';
import { recordRender, scopes } from './render-state.js';

/** What one reconcile pass did: per cluster, a new generation, unchanged, or an error. */
export interface SyncPass {
  revision: string | null;
  /** Set when flotilla.yaml or the fetch failed: every cluster keeps its last good bundle. */
  error: string | null;
  clusters: Array<PublishOutcome | { cluster: string; error: string }>;
  /** Set when a follower replica handed the pass to the leader, which runs it. */
  runBy?: 'leader';
}

export interface SyncLoop {
  /** Runs a pass now, or after the running one (passes never overlap; requests coalesce). */
  trigger(reason: string): Promise<SyncPass>;
  /** Starts polling (and runs a first pass); again after a pause. */
  start(): void;
  /** Stops polling and waits for a running pass; start() resumes. */
  pause(): Promise<void>;
  stop(): Promise<void>;
  /** The fleet config of the last good pass. */
  config(): FleetConfig | undefined;
}

export interface SyncLoopOptions {
  db: Db;
  source: GitSource;
  renderer: Renderer;
  publisher: BundlePublisher;
  logger: Logger;
  /** Poll interval; 0 disables polling (webhook and trigger only). */
  pollMs: number;
  /** Told of every finished pass (metrics). */
  onPass?: (pass: SyncPass) => void;
}

/**
 * The reconcile loop: fetch, read flotilla.yaml from the default branch, and for each
 * environment resolve its branch and render and publish each of its clusters. Failures
 * are isolated: a missing branch or failed render keeps that environment's (or cluster's)
 * clusters on their last good bundle and records the error; the others go on.
 */
export function createSyncLoop(options: SyncLoopOptions): SyncLoop {
  const { db, source, renderer, publisher, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<SyncPass> | undefined;
  let next: Promise<SyncPass> | undefined;
  let lastConfig: FleetConfig | undefined;
  let stopped = false;

  async function pass(): Promise<SyncPass> {
    const result: SyncPass = { revision: null, error: null, clusters: [] };
    let config: FleetConfig;
    let defaultBranch: string;
    try {
      await source.fetch();
      defaultBranch = await source.defaultBranch();
      const head = await source.resolveBranch(defaultBranch);
      result.revision = head;
      const file = await source.readFile(head, FLEET_CONFIG_FILE);
      if (!file)
        throw new Error(`${FLEET_CONFIG_FILE}: not found on branch ${defaultBranch} at ${head.slice(0, 12)}`);
      config = parseFleetConfig(new TextDecoder().decode(file));
      await recordRender(db, scopes.config, { revision: head });
    } catch (err) {
      result.error = errorMessage(err);
      await recordRender(db, scopes.config, { error: result.error });
      logger.warn(
        { err: result.error },
        'sync pass: source or flotilla.yaml failed; keeping last good bundles',
      );
      return result;
    }
    lastConfig = config;
    const all = await db.select().from(clustersTable);
    const envs = new Map(config.environments.map((e) => [e.name, e]));
    for (const cluster of all) {
      if (!envs.has(cluster.environment)) {
        const error = `cluster ${cluster.name}: environment ${cluster.environment} is not declared in ${FLEET_CONFIG_FILE}`;
        await recordRender(db, scopes.cluster(cluster.name), { error });
        result.clusters.push({ cluster: cluster.name, error });
      }
    }
    for (const env of config.environments) {
      const members = all.filter((c) => c.environment === env.name);
      const branch = env.branch ?? defaultBranch;
      let commit: string;
      try {
        commit = await source.resolveBranch(branch);
        await recordRender(db, scopes.env(env.name), { revision: commit });
      } catch (err) {
        const error = `environment ${env.name}: ${errorMessage(err)}`;
        await recordRender(db, scopes.env(env.name), { error });
        for (const c of members) result.clusters.push({ cluster: c.name, error });
        logger.warn({ environment: env.name, err: error }, 'environment skipped; keeping last good bundles');
        continue;
      }
      for (const cluster of members)
        result.clusters.push(await renderAndPublish(cluster, env, branch, commit));
    }
    return result;
  }

  async function renderAndPublish(
    cluster: { name: string; environment: string; labels: Record<string, string> },
    env: EnvironmentConfig,
    branch: string,
    commit: string,
  ): Promise<PublishOutcome | { cluster: string; error: string }> {
    try {
      const rendered = await renderer.render(commit, env, {
        name: cluster.name,
        environment: cluster.environment,
        labels: cluster.labels,
      });
      if (rendered.objects.length === 0 && !env.policy.allowEmpty)
        throw new Error(
          `environment ${env.name}: ${env.path} renders no objects; the last good bundle stays (an empty bundle would prune everything: set policy allowEmpty: true in ${FLEET_CONFIG_FILE} if that is meant)`,
        );
      const outcome = await publisher.publishCluster(cluster, rendered, {
        name: env.name,
        branch,
        policy: env.policy,
      });
      await recordRender(db, scopes.cluster(cluster.name), { revision: commit });
      return outcome;
    } catch (err) {
      const error = errorMessage(err);
      await recordRender(db, scopes.cluster(cluster.name), { error });
      logger.warn(
        { cluster: cluster.name, err: error },
        'cluster render failed; keeping its last good bundle',
      );
      return { cluster: cluster.name, error };
    }
  }

  const run = async (reason: string): Promise<SyncPass> => {
    logger.debug({ reason }, 'sync pass');
    try {
      const result = await pass();
      options.onPass?.(result);
      return result;
    } catch (err) {
      // The DB failing is not a render error: report it, try again on the next poll.
      logger.error({ err: errorMessage(err) }, 'sync pass failed');
      return { revision: null, error: errorMessage(err), clusters: [] };
    }
  };

  const trigger = (reason: string): Promise<SyncPass> => {
    if (!running) {
      running = run(reason).finally(() => {
        running = undefined;
      });
      return running;
    }
    // One pass waits behind the running one, however many ask: it sees all their changes.
    next ??= running.then(() => {
      next = undefined;
      return trigger(reason);
    });
    return next;
  };

  return {
    trigger,
    config: () => lastConfig,
    start() {
      stopped = false;
      if (timer) clearInterval(timer);
      void trigger('start');
      if (options.pollMs > 0) {
        timer = setInterval(() => {
          if (!stopped) void trigger('poll');
        }, options.pollMs);
        timer.unref();
      }
    },
    async pause() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => {});
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
