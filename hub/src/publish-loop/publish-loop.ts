import { errorMessage, type Logger } from '@flotilla/shared';
import type { BundleHead, BundlePublisher } from '../bundles/publish-cluster.js';
import { appsOfEnvironment, FLEET_CONFIG_FILE, type FleetConfig, parseFleetConfig } from '../config/index.js';
import type { Db } from '../db/database.js';
import { clusters as clustersTable } from '../db/schema.js';
import type { Renderer } from '../render/index.js';
import type { GitSource } from '../source/index.js';
import { mapConcurrent } from '../util/concurrent.js';
import {
  type ClusterOutcome,
  type ClusterPublishing,
  type ClusterWork,
  createClusterPublishing,
  type PlannedCluster,
  type PublishGate,
} from './cluster-publish.js';
import { type RenderOutcome, recordRenders, renderStates, scopes } from './render-state.js';
import type { WorkQueue } from './work-queue.js';

/** Clusters stored and published together: bounds the renders held in memory at once. */
const PUBLISH_BATCH = 250;

/** Clusters planned and queued together when replicas share a pass. */
const ENQUEUE_SLICE = 100;

/** Renders and publishes in flight at once: enough to overlap NATS acks and DB round trips. */
const DEFAULT_CONCURRENCY = 16;

function sameOutcome(a: RenderOutcome | undefined, b: RenderOutcome): boolean {
  if (!a) return false;
  return 'error' in b ? 'error' in a && a.error === b.error : 'revision' in a && a.revision === b.revision;
}

/** What one reconcile pass did: per cluster, a new generation, unchanged, or an error. */
export interface PublishPass {
  revision: string | null;
  /** Set when flotilla.yaml or the fetch failed: every cluster keeps its last good bundle. */
  error: string | null;
  clusters: ClusterOutcome[];
  /** Set when a follower replica handed the pass to the leader, which runs it. */
  runBy?: 'leader';
}

export interface PublishLoop {
  /** Runs a pass now, or after the running one (passes never overlap; requests coalesce). */
  trigger(reason: string): Promise<PublishPass>;
  /** Starts polling (and runs a first pass); again after a pause. */
  start(): void;
  /** Stops polling and waits for a running pass; start() resumes. */
  pause(): Promise<void>;
  stop(): Promise<void>;
  /** The fleet config of the last good pass. */
  config(): FleetConfig | undefined;
}

export interface PublishLoopOptions {
  db: Db;
  source: GitSource;
  renderer: Renderer;
  publisher: BundlePublisher;
  logger: Logger;
  /** Poll interval; 0 disables polling (webhook and trigger only). */
  pollMs: number;
  /** Told of every finished pass (metrics). */
  onPass?: (pass: PublishPass) => void;
  /** Clusters rendered and published at once; default 16. */
  concurrency?: number;
  /**
   * Shares each pass's changed clusters with the other hub replicas (PostgreSQL). Without
   * it this hub renders and publishes everything itself.
   */
  queue?: (publishing: ClusterPublishing) => WorkQueue;
  /** Holds back what must not be published yet (pause, rollout waves, blast radius). */
  gate?: PublishGate;
}

/**
 * The reconcile loop: fetch, read flotilla.yaml from the default branch, and for each
 * environment resolve its branch and render and publish each of its clusters. Failures
 * are isolated: a missing branch or failed render keeps that environment's (or cluster's)
 * clusters on their last good bundle and records the error; the others go on.
 */
export function createPublishLoop(options: PublishLoopOptions): PublishLoop {
  const { db, source, renderer, publisher, logger } = options;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const publishing = createClusterPublishing({
    renderer,
    publisher,
    logger,
    concurrency,
    ...(options.gate ? { gate: options.gate } : {}),
  });
  const queue = options.queue?.(publishing);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<PublishPass> | undefined;
  let next: Promise<PublishPass> | undefined;
  let lastConfig: FleetConfig | undefined;
  let stopped = false;

  async function pass(): Promise<PublishPass> {
    const result: PublishPass = { revision: null, error: null, clusters: [] };
    let config: FleetConfig;
    let defaultBranch: string;
    const states = await renderStates(db);
    /** Render outcomes of this pass; only those that differ from the stored ones are written. */
    const outcomes = new Map<string, RenderOutcome>();
    const record = (scope: string, outcome: RenderOutcome) => outcomes.set(scope, outcome);
    try {
      try {
        await source.fetch();
        defaultBranch = await source.defaultBranch();
        const head = await source.resolveBranch(defaultBranch);
        result.revision = head;
        const file = await source.readFile(head, FLEET_CONFIG_FILE);
        if (!file)
          throw new Error(
            `${FLEET_CONFIG_FILE}: not found on branch ${defaultBranch} at ${head.slice(0, 12)}`,
          );
        config = parseFleetConfig(new TextDecoder().decode(file));
        record(scopes.config, { revision: head });
      } catch (err) {
        result.error = errorMessage(err);
        record(scopes.config, { error: result.error });
        logger.warn(
          { err: result.error },
          'publish pass: source or flotilla.yaml failed; keeping last good bundles',
        );
        return result;
      }
      lastConfig = config;
      const [all, heads] = await Promise.all([db.select().from(clustersTable), publisher.heads()]);
      const envs = new Map(config.environments.map((e) => [e.name, e]));
      for (const cluster of all) {
        if (!envs.has(cluster.environment)) {
          const error = `cluster ${cluster.name}: environment ${cluster.environment} is not declared in ${FLEET_CONFIG_FILE}`;
          record(scopes.cluster(cluster.name), { error });
          result.clusters.push({ cluster: cluster.name, error });
        }
      }
      const work: ClusterWork[] = [];
      for (const env of config.environments) {
        const members = all.filter((c) => c.environment === env.name);
        const branch = env.branch ?? defaultBranch;
        try {
          const commit = await source.resolveBranch(branch);
          record(scopes.env(env.name), { revision: commit });
          const fleet = {
            apps: appsOfEnvironment(config.apps, env.name),
            environments: config.environments.map((e) => e.name),
          };
          for (const cluster of members) work.push({ cluster, env, branch, commit, fleet });
        } catch (err) {
          const error = `environment ${env.name}: ${errorMessage(err)}`;
          record(scopes.env(env.name), { error });
          for (const c of members) result.clusters.push({ cluster: c.name, error });
          logger.warn(
            { environment: env.name, err: error },
            'environment skipped; keeping last good bundles',
          );
        }
      }
      // The other replicas fetch the pass's commits while this one holds and plans.
      if (queue) await queue.announce([...new Set(work.map((w) => w.commit))]);
      const holds = options.gate ? await options.gate.hold(work, heads) : new Map<string, string>();
      for (const [cluster, held] of holds) result.clusters.push({ cluster, held });
      const go = holds.size === 0 ? work : work.filter((w) => !holds.has(w.cluster.name));
      const { outcomes: done, recorded } = queue
        ? await shared(go, heads)
        : { outcomes: await local(go, heads), recorded: new Set<string>() };
      for (const [i, outcome] of done.entries()) {
        const w = go[i]!;
        if (recorded.has(w.cluster.name) || 'held' in outcome) continue;
        record(
          scopes.cluster(w.cluster.name),
          'error' in outcome ? { error: outcome.error } : { revision: w.commit },
        );
      }
      result.clusters.push(...done);
      return result;
    } finally {
      const changed = new Map([...outcomes].filter(([scope, o]) => !sameOutcome(states.get(scope), o)));
      await recordRenders(db, changed);
    }
  }

  /** This hub renders and publishes every changed cluster, a batch at a time. */
  async function local(work: ClusterWork[], heads: Map<string, BundleHead>): Promise<ClusterOutcome[]> {
    const done: ClusterOutcome[] = [];
    for (let i = 0; i < work.length; i += PUBLISH_BATCH)
      done.push(...(await publishing.publish(work.slice(i, i + PUBLISH_BATCH), heads)));
    return done;
  }

  /**
   * Every replica shares the changed clusters: this one plans all of them, queues those
   * whose inputs changed, works on the queue with the others, and waits until the queue
   * holds none of this pass's rows. The replica that publishes a cluster records its render
   * state; the outcomes of clusters others published are read back from the database.
   */
  async function shared(
    work: ClusterWork[],
    heads: Map<string, BundleHead>,
  ): Promise<{ outcomes: ClusterOutcome[]; recorded: Set<string> }> {
    const pass = Date.now();
    const planned: PlannedCluster[] = [];
    // Queued a slice at a time as planned: the other replicas start on the first slice while
    // this one plans the rest.
    for (let i = 0; i < work.length; i += ENQUEUE_SLICE) {
      const slice = work.slice(i, i + ENQUEUE_SLICE);
      const plans = await mapConcurrent(slice, concurrency, (w) =>
        publishing.plan(w, heads.get(w.cluster.name)),
      );
      planned.push(...plans);
      await queue!.enqueue(
        pass,
        slice.filter((_, j) => !plans[j]!.done),
      );
    }
    const changed = work.filter((_, i) => !planned[i]!.done).map((w) => w.cluster.name);
    const mine = await queue!.drain();
    await queue!.settled(pass, changed);
    const others = changed.filter((name) => !mine.has(name));
    const [after, states, heldByOthers] = await Promise.all([
      publisher.heads(others),
      renderStates(db),
      options.gate && others.length > 0 ? options.gate.heldNow(others) : new Map<string, string>(),
    ]);
    const outcomes = planned.map((p, i): ClusterOutcome => {
      if (p.done) return p.done;
      const name = work[i]!.cluster.name;
      const own = mine.get(name);
      if (own) return own;
      const state = states.get(scopes.cluster(name));
      if (state && 'error' in state) return { cluster: name, error: state.error };
      const held = heldByOthers.get(name);
      if (held) return { cluster: name, held };
      const head = after.get(name);
      if (!head) return { cluster: name, error: `cluster ${name}: no bundle after the pass` };
      const before = heads.get(name);
      return {
        cluster: name,
        published: head.generation !== before?.generation,
        generation: head.generation,
        digest: head.contentDigest,
      };
    });
    return { outcomes, recorded: new Set(changed) };
  }

  const run = async (reason: string): Promise<PublishPass> => {
    logger.debug({ reason }, 'publish pass');
    try {
      const result = await pass();
      options.onPass?.(result);
      return result;
    } catch (err) {
      // The DB failing is not a render error: report it, try again on the next poll.
      logger.error({ err: errorMessage(err) }, 'publish pass failed');
      return { revision: null, error: errorMessage(err), clusters: [] };
    }
  };

  const trigger = (reason: string): Promise<PublishPass> => {
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
