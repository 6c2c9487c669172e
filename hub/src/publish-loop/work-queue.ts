import { errorMessage, type Logger, redactUrl } from '@flotilla/shared';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import type { BundlePublisher } from '../bundles/publish-cluster.js';
import type { EnvironmentConfig } from '../config/index.js';
import type { Db } from '../db/database.js';
import type { GitSource } from '../source/index.js';
import type { ClusterOutcome, ClusterPublishing, ClusterWork, FleetTargeting } from './cluster-publish.js';
import { type RenderOutcome, recordRenders, scopes } from './render-state.js';

/**
 * A pass's render/sign/publish work shared by every hub replica through PostgreSQL row
 * claims. The leader enqueues the clusters a pass found changed; every replica (the leader
 * too) claims rows with `SELECT … FOR UPDATE SKIP LOCKED`, publishes them, and deletes them in
 * the claiming transaction. A replica that dies mid-batch loses its session, PostgreSQL
 * releases its row locks, and the rows are claimed again: no update is lost; and since each
 * cluster is claimed by one replica at a time and the publisher dedupes by content digest,
 * no change gets two generations or is published twice.
 */
export interface WorkQueue {
  /**
   * Tells every replica the commits of a pass about to be queued, so that a replica whose
   * clone lacks them fetches while this one still plans, not after it claimed its first rows.
   * Never throws: a replica that missed it fetches when it claims.
   */
  announce(commits: string[]): Promise<void>;
  /** Queues a pass's changed clusters (a newer pass replaces a cluster's older row) and wakes every replica. */
  enqueue(pass: number, work: ClusterWork[]): Promise<void>;
  /** Claims and publishes batches until nothing is left to claim; returns what this replica did. */
  drain(): Promise<Map<string, ClusterOutcome>>;
  /** Resolves once no row of `pass` is left (other replicas finish what they claimed). */
  settled(pass: number, clusters: string[]): Promise<void>;
  /** Listens for work from other replicas' passes and polls for rows left behind. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface WorkQueueOptions {
  db: Db;
  /** The PostgreSQL URL, for the LISTEN session. */
  url: string;
  source: GitSource;
  publisher: BundlePublisher;
  publishing: ClusterPublishing;
  logger: Logger;
  /** Rows one claim takes; default 50. */
  claimSize?: number;
  /**
   * Claims this replica works on at once; default 2. While one waits on PostgreSQL or on
   * JetStream's acks the other renders and signs, so one replica keeps its core busy.
   */
  claimConcurrency?: number;
  /** How often to look for rows nobody announced (a dead replica's); default 2 s. */
  pollMs?: number;
  /**
   * How often settled() counts a pass's rows again when no claim has finished meanwhile (a
   * dead replica's rows, a lost notification); default 500 ms. A finished claim wakes it at once.
   */
  settleRecheckMs?: number;
}

const CHANNEL = 'flotilla_sync_work';
/** A notification that names commits to fetch rather than work to claim. */
const FETCH = 'fetch ';
/** A notification that a claim finished (its rows deleted): a replica waiting for its pass to settle looks again. */
const DONE = 'done';
/** Clusters of one pass a replica remembers having published, to claim them first in the next (cache affinity). */
const MAX_AFFINITY = 20_000;

/** Commits named in one notification: PostgreSQL's payload limit is 8,000 bytes. */
const MAX_ANNOUNCED = 150;

interface ClaimedRow extends Record<string, unknown> {
  cluster: string;
  pass: string | number;
  /** The environment, with the fleet-wide apps that may reach it under `fleet` (absent from older rows). */
  environment: EnvironmentConfig & { fleet?: FleetTargeting };
  branch: string;
  commit: string;
  cluster_environment: string | null;
  labels: Record<string, string> | null;
}

export function createWorkQueue(options: WorkQueueOptions): WorkQueue {
  const { db, logger, source, publisher, publishing } = options;
  const claimSize = options.claimSize ?? 50;
  const claimConcurrency = options.claimConcurrency ?? 2;
  const pollMs = options.pollMs ?? 2000;
  const settleRecheckMs = options.settleRecheckMs ?? 500;
  let listener: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let draining: Promise<Map<string, ClusterOutcome>> | undefined;
  let again = false;
  let fetching: Promise<void> | undefined;
  /**
   * The clusters this replica published in the last pass it worked on, claimed first in the
   * next one: their last render's parsed manifests and git objects are in this process's
   * caches, and a commit usually leaves most of a cluster's files (substituted, so parsed per
   * cluster) as they were; a cluster claimed by another replica each pass is parsed again
   * there. Only the last pass counts, so the replicas' preferences stay disjoint.
   */
  let affinity = new Set<string>();
  let affinityPass = Number.NEGATIVE_INFINITY;
  let published = new Set<string>();
  /** A newer pass began (queued, or claimed): what this replica published in the last one is preferred now. */
  const passBegins = (pass: number) => {
    if (!(pass > affinityPass)) return;
    if (published.size > 0) affinity = published;
    published = new Set();
    affinityPass = pass;
  };
  const remember = (pass: number, cluster: string) => {
    passBegins(pass);
    if (published.size < MAX_AFFINITY) published.add(cluster);
  };
  /** settled() callers waiting for the next claim to finish anywhere (a DONE notification). */
  const settleWaiters = new Set<() => void>();
  const wakeSettled = () => {
    for (const wake of settleWaiters) wake();
    settleWaiters.clear();
  };

  /** Fetches the source unless its clone has every commit named; one fetch at a time, shared. */
  const ensureCommits = async (commits: string[]): Promise<void> => {
    await fetching?.catch(() => undefined);
    const missing = await Promise.all(commits.map(async (c) => !(await source.treeId(c, ''))));
    if (!missing.some(Boolean)) return;
    fetching ??= source.fetch().finally(() => {
      fetching = undefined;
    });
    await fetching;
  };

  /** One claim: a transaction that holds its rows until they are published and deleted. */
  const claimOnce = async (done: Map<string, ClusterOutcome>): Promise<number> =>
    db.transaction(async (tx) => {
      // This replica's own clusters first (see affinity; a hash join, not `= ANY` row by row), then
      // the oldest: every row is taken by someone.
      const { rows } = (await tx.execute(sql`
        SELECT w.cluster, w.pass, w.environment, w.branch, w.commit,
               c.environment AS cluster_environment, c.labels
        FROM sync_work w LEFT JOIN clusters c ON c.name = w.cluster
          LEFT JOIN unnest(${sql.param([...affinity])}::text[]) AS mine(cluster) ON mine.cluster = w.cluster
        ORDER BY mine.cluster IS NULL, w.enqueued_at, w.cluster
        LIMIT ${claimSize}
        FOR UPDATE OF w SKIP LOCKED`)) as unknown as { rows: ClaimedRow[] };
      if (rows.length === 0) return 0;
      // A cluster removed since it was queued, or moved to another environment: nothing to publish.
      const live = rows.filter((r) => r.cluster_environment === r.environment.name);
      const work: ClusterWork[] = live.map((r) => {
        const { fleet, ...env } = r.environment;
        return {
          cluster: { name: r.cluster, environment: r.cluster_environment!, labels: r.labels ?? {} },
          env,
          branch: r.branch,
          commit: r.commit,
          ...(fleet ? { fleet } : {}),
        };
      });
      // This replica's clone may not have the pass's commit yet.
      await ensureCommits([...new Set(work.map((w) => w.commit))]);
      const heads = await publisher.heads(work.map((w) => w.cluster.name));
      const outcomes = await publishing.publish(work, heads);
      const states = new Map<string, RenderOutcome>();
      for (const [i, outcome] of outcomes.entries()) {
        done.set(outcome.cluster, outcome);
        remember(Number(live[i]!.pass), outcome.cluster);
        if ('held' in outcome) continue;
        states.set(
          scopes.cluster(outcome.cluster),
          'error' in outcome ? { error: outcome.error } : { revision: work[i]!.commit },
        );
      }
      await recordRenders(db, states);
      await tx.execute(
        sql`DELETE FROM sync_work w USING (VALUES ${sql.join(
          rows.map((r) => sql`(${r.cluster}, ${Number(r.pass)}::bigint)`),
          sql`, `,
        )}) AS v(cluster, pass) WHERE w.cluster = v.cluster AND w.pass = v.pass`,
      );
      // Delivered at commit: a replica waiting for the pass to settle counts again then.
      await tx.execute(sql`SELECT pg_notify(${CHANNEL}, ${DONE})`);
      return rows.length;
    });

  const drain = (): Promise<Map<string, ClusterOutcome>> => {
    if (draining) {
      again = true;
      return draining;
    }
    draining = (async () => {
      const done = new Map<string, ClusterOutcome>();
      const lane = async () => {
        while (!stopped && (await claimOnce(done)) > 0) {}
      };
      try {
        do {
          again = false;
          // Every lane ends before the drain does, even when one failed.
          const lanes = await Promise.allSettled(Array.from({ length: claimConcurrency }, lane));
          const failed = lanes.find((l) => l.status === 'rejected');
          if (failed) throw failed.reason;
        } while (again && !stopped);
      } catch (err) {
        // The rows stay queued; the next poll or notification tries again.
        logger.warn({ err: errorMessage(err) }, 'sync work: claim failed; the work stays queued');
      }
      return done;
    })().finally(() => {
      draining = undefined;
    });
    return draining;
  };

  return {
    async announce(commits) {
      if (commits.length === 0) return;
      const payload = `${FETCH}${commits.slice(0, MAX_ANNOUNCED).join(',')}`;
      await db
        .execute(sql`SELECT pg_notify(${CHANNEL}, ${payload})`)
        .catch((err) => logger.warn({ err: errorMessage(err) }, 'sync work: cannot announce a pass'));
    },

    async enqueue(pass, work) {
      if (work.length === 0) return;
      for (let i = 0; i < work.length; i += 1000) {
        const rows = work.slice(i, i + 1000).map((w) => ({
          cluster: w.cluster.name,
          pass,
          environment: w.fleet ? { ...w.env, fleet: w.fleet } : w.env,
          branch: w.branch,
          commit: w.commit,
        }));
        await db.execute(sql`INSERT INTO sync_work (cluster, pass, environment, branch, commit)
          VALUES ${sql.join(
            rows.map(
              (r) =>
                sql`(${r.cluster}, ${r.pass}::bigint, ${JSON.stringify(r.environment)}::jsonb, ${r.branch}, ${r.commit})`,
            ),
            sql`, `,
          )}
          ON CONFLICT (cluster) DO UPDATE SET pass = excluded.pass, environment = excluded.environment,
            branch = excluded.branch, commit = excluded.commit, enqueued_at = now()`);
      }
      await db.execute(sql`SELECT pg_notify(${CHANNEL}, ${String(pass)})`);
    },

    drain,

    async settled(pass, clusters) {
      if (clusters.length === 0) return;
      for (;;) {
        // Armed before counting, so a claim that finishes meanwhile is not missed.
        let wake!: () => void;
        const woken = new Promise<void>((resolve) => {
          wake = resolve;
        });
        settleWaiters.add(wake);
        const { rows } = (await db.execute(sql`SELECT count(*)::int AS n FROM sync_work
          WHERE pass <= ${pass}::bigint AND cluster IN (${sql.join(
            clusters.map((c) => sql`${c}`),
            sql`, `,
          )})`)) as unknown as { rows: Array<{ n: number }> };
        if (!rows[0]?.n || stopped) {
          settleWaiters.delete(wake);
          return;
        }
        // Whatever is claimable now (a dead replica's rows) this replica takes over.
        await drain();
        // Then waits for another replica's claim to finish (it notifies at commit) rather than
        // polling: a tight poll while another replica renders its last rows costs both this
        // hub and PostgreSQL a claim transaction and a count every few tens of milliseconds.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          woken,
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, listener ? settleRecheckMs : 50);
          }),
        ]);
        clearTimeout(timer);
        settleWaiters.delete(wake);
      }
    },

    async start() {
      stopped = false;
      const connect = async () => {
        const client = new pg.Client({ connectionString: options.url, keepAlive: true });
        client.on('notification', (message) => {
          if (message.payload === DONE) return wakeSettled();
          if (!message.payload?.startsWith(FETCH)) {
            // The payload of a pass's enqueue is its number.
            const pass = Number(message.payload);
            if (Number.isFinite(pass)) passBegins(pass);
            return void drain();
          }
          const commits = message.payload.slice(FETCH.length).split(',');
          ensureCommits(commits).catch((err) =>
            logger.warn({ err: errorMessage(err) }, 'sync work: fetching an announced pass failed'),
          );
        });
        client.on('error', (err) => {
          logger.warn(
            { err: errorMessage(err) },
            'sync work: listen session failed; polling until it is back',
          );
          if (listener === client) listener = undefined;
        });
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
        listener = client;
      };
      const tick = async () => {
        if (stopped) return;
        if (!listener)
          await connect().catch((err) =>
            logger.warn(
              { err: errorMessage(err), database: redactUrl(options.url) },
              'sync work: cannot listen for work',
            ),
          );
        await drain();
        if (!stopped) timer = setTimeout(() => void tick(), pollMs);
      };
      await tick();
    },

    async stop() {
      stopped = true;
      wakeSettled();
      if (timer) clearTimeout(timer);
      await draining?.catch(() => undefined);
      await listener?.end().catch(() => undefined);
      listener = undefined;
    },
  };
}
