import { errorMessage, type Logger, redactUrl } from '@flotilla/shared';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import type { Database } from './database.js';

/**
 * Which hub replica renders and publishes. Replicas on one PostgreSQL compete for a session
 * advisory lock on a connection of their own: the holder leads until that session ends (it
 * stops, crashes, or loses the database), and the server releases the lock then, so two
 * replicas never hold it at once. A hub on PGlite is alone by construction and always leads.
 *
 * Followers still serve the API and ingest status; a pass they are asked for (webhook, new
 * cluster, promotion) reaches the leader as a PostgreSQL notification.
 */
export interface LeaderElection {
  isLeader(): boolean;
  /** Runs a pass here when leading; otherwise asks the leader to. */
  requestPass(reason: string): Promise<void>;
  stop(): Promise<void>;
}

export interface LeaderElectionOptions {
  database: Database;
  logger: Logger;
  /** This replica now leads: start the render loop. */
  onElected(): void;
  /** This replica no longer leads (its database session is gone): stop the render loop. */
  onDeposed(): void;
  /** A follower asked for a pass (only called while leading). */
  onPassRequested(reason: string): void;
  /** How often a follower retries the lock and a leader checks its session; default 2 s. */
  checkMs?: number;
}

/** The advisory lock key: "flotilla" as 8 bytes (0x666c6f74696c6c61), one lock per database. */
export const LEADER_LOCK_KEY = '7380396435129003105';
const CHANNEL = 'flotilla_sync_requests';

export async function startLeaderElection(options: LeaderElectionOptions): Promise<LeaderElection> {
  const { database, logger } = options;
  if (database.kind === 'pglite' || !database.url) {
    options.onElected();
    return {
      isLeader: () => true,
      requestPass: async (reason) => options.onPassRequested(reason),
      stop: async () => {},
    };
  }
  const url = database.url;
  const checkMs = options.checkMs ?? 2000;
  let client: pg.Client | undefined;
  let leader = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let lastError: string | undefined;

  const drop = async (why: string) => {
    const c = client;
    client = undefined;
    if (leader) {
      leader = false;
      logger.warn({ why }, 'no longer the leader: rendering and publishing stop here');
      options.onDeposed();
    }
    await c?.end().catch(() => {});
  };

  const tick = async () => {
    timer = undefined;
    if (stopped) return;
    try {
      if (!client) {
        const c = new pg.Client({ connectionString: url, query_timeout: checkMs * 2, keepAlive: true });
        c.on('error', (err) => void drop(`database session: ${errorMessage(err)}`));
        c.on('end', () => {
          if (client === c) void drop('database session ended');
        });
        c.on('notification', (n) => {
          if (leader && n.channel === CHANNEL) options.onPassRequested(n.payload || 'follower');
        });
        client = c;
        await c.connect();
      }
      if (leader) {
        // The session holds the lock; a session that answers still holds it.
        await client.query('SELECT 1');
      } else {
        const res = await client.query<{ locked: boolean }>(
          `SELECT pg_try_advisory_lock(${LEADER_LOCK_KEY}::bigint) AS locked`,
        );
        if (res.rows[0]?.locked) {
          await client.query(`LISTEN ${CHANNEL}`);
          leader = true;
          logger.info({ database: redactUrl(url) }, 'elected leader: this replica renders and publishes');
          options.onElected();
        }
      }
      lastError = undefined;
    } catch (err) {
      const message = errorMessage(err);
      // Said once per distinct failure, not at every retry.
      if (message !== lastError)
        logger.warn({ err: message }, 'leader election: the database did not answer');
      lastError = message;
      await drop(`database session: ${message}`);
    }
    if (!stopped) timer = setTimeout(() => void tick(), checkMs);
  };

  await tick();
  if (!leader) logger.info('another replica leads; this one serves the API and ingests status');
  return {
    isLeader: () => leader,
    async requestPass(reason) {
      if (leader) {
        options.onPassRequested(reason);
        return;
      }
      await database.db.execute(sql`SELECT pg_notify(${CHANNEL}, ${reason})`);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await drop('hub stopping');
    },
  };
}
