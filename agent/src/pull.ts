import {
  BUNDLE_STREAM,
  backoffDelay,
  bundleChunkSubject,
  bundleSubject,
  createLogger,
  decodeTransportHead,
  errorMessage,
  FlotillaError,
  type Logger,
  notifySubject,
  type TransportHead,
  transportHeadOf,
  unpackTransport,
  VerifyError,
  VerifyErrorCode,
} from '@flotilla/shared';
import { type ConnectionOptions, connect, jwtAuthenticator, type NatsConnection } from 'nats';
import type { LoopProgress } from './health/progress.js';

/** What one look at the cluster's bundle subject found, as data. */
export type PullOutcome =
  | { kind: 'none' }
  /** The head is the one handled last time: nothing new, no chunks fetched. */
  | { kind: 'unchanged'; head: TransportHead }
  | { kind: 'bundle'; head: TransportHead; envelope: Uint8Array }
  /** Something is there but cannot be read as a bundle (digest mismatch after retries, bad head). */
  | { kind: 'unreadable'; head?: TransportHead; error: VerifyError };

export interface FetchOptions {
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** How often to start again from the head when chunks do not match it; default 3. */
  digestRetries?: number;
  /** The transport digest of the head handled last; an equal head is `unchanged`. */
  knownDigest?: string;
  /** The hub's JetStream domain, for an agent reaching it through a NATS leaf node. */
  jsDomain?: string;
  logger?: Logger;
  /** Called after each request answered (head or chunk): a long fetch is progress, not a stall. */
  onRequest?: () => void;
  /**
   * A head a notify announced: its chunks are fetched without asking for the head first. It is
   * only a shortcut: when it is the head handled last, or its chunks do not match it (a newer
   * bundle replaced them) or do not decompress, the stream's own head is read as without it.
   */
  head?: TransportHead;
}

/** The direct-get API prefix of the bundle stream, in the hub's JetStream domain when one is given. */
export function directGetPrefix(jsDomain?: string): string {
  return `$JS.${jsDomain ? `${jsDomain}.` : ''}API.DIRECT.GET.${BUNDLE_STREAM}.`;
}

/**
 * Reads one subject's last message with a plain request to the direct-get API: the only
 * JetStream call an agent's permissions allow. `undefined` when the subject holds nothing.
 */
async function directGet(
  nc: NatsConnection,
  subject: string,
  timeout: number,
  prefix: string,
): Promise<Uint8Array | undefined> {
  let msg: Awaited<ReturnType<NatsConnection['request']>>;
  try {
    msg = await nc.request(`${prefix}${subject}`, new Uint8Array(), { timeout });
  } catch (err) {
    // No responders: the stream does not exist yet (the hub has published nothing).
    if ((err as { code?: string }).code === '503') return undefined;
    throw new FlotillaError('unavailable', `${subject}: direct get failed: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const code = msg.headers?.code ?? 0;
  if (code === 404) return undefined;
  if (code >= 400) {
    throw new FlotillaError(
      'unavailable',
      `${subject}: direct get answered ${code} ${msg.headers?.description ?? ''}`,
    );
  }
  return msg.data;
}

/** The head a notify carries (BundleNotice), if it carries a well-formed one. */
function noticeHead(data: Uint8Array | undefined): TransportHead | undefined {
  if (!data?.length) return undefined;
  try {
    const notice = JSON.parse(new TextDecoder().decode(data)) as { head?: unknown };
    return notice.head === undefined ? undefined : transportHeadOf(notice.head);
  } catch {
    return undefined;
  }
}

/**
 * Fetches the latest bundle of a cluster: the head, then its chunks, reassembled and
 * checked against the head's digests. A chunk that belongs to a newer bundle (the hub
 * published between our reads) shows as a digest mismatch: start again from the head.
 */
export async function fetchLatestBundle(
  nc: NatsConnection,
  cluster: string,
  options: FetchOptions = {},
): Promise<PullOutcome> {
  const timeout = options.timeoutMs ?? 10_000;
  const retries = options.digestRetries ?? 3;
  const prefix = directGetPrefix(options.jsDomain);
  let announced =
    options.head && options.head.digest !== options.knownDigest && options.head.cluster === cluster
      ? options.head
      : undefined;
  for (let attempt = 0; ; attempt++) {
    let head: TransportHead;
    const fromNotice = announced !== undefined;
    if (announced) {
      head = announced;
      announced = undefined;
    } else {
      const headBytes = await directGet(nc, bundleSubject(cluster), timeout, prefix);
      options.onRequest?.();
      if (!headBytes) return { kind: 'none' };
      try {
        head = decodeTransportHead(headBytes);
      } catch (err) {
        if (err instanceof VerifyError) return { kind: 'unreadable', error: err };
        throw err;
      }
    }
    if (options.knownDigest && head.digest === options.knownDigest) return { kind: 'unchanged', head };
    try {
      const envelope = await unpackTransport(head, async (i) => {
        const chunk = await directGet(nc, bundleChunkSubject(cluster, i), timeout, prefix);
        options.onRequest?.();
        if (!chunk) {
          throw new VerifyError(
            VerifyErrorCode.DigestMismatch,
            `chunk ${i + 1}/${head.chunks.length} is missing`,
          );
        }
        return chunk;
      });
      return { kind: 'bundle', head, envelope };
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      // The notify's head was stale (or not what the stream holds): read the stream's head now.
      if (fromNotice) {
        attempt--;
        continue;
      }
      if (err.reason !== VerifyErrorCode.DigestMismatch || attempt >= retries) {
        return { kind: 'unreadable', head, error: err };
      }
      options.logger?.info(
        { cluster, generation: head.generation, attempt: attempt + 1 },
        'bundle chunks changed while reading; starting again from the head',
      );
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }
}

export interface BundlePullerOptions {
  cluster: string;
  servers: string[];
  /** User JWT and nkey seed from registration; omitted for a no-auth server (tests). */
  jwt?: string;
  seed?: string;
  /**
   * The user JWT and seed as they are now, read at every (re)connect: after a credential
   * rotation the hub revokes the old user, the server drops the connection, and the
   * reconnect uses the new one. Overrides `jwt` and `seed`.
   */
  credentials?: () => { jwt: string; seed: string };
  /** The only inbox prefix the agent's NATS permissions allow. */
  inboxPrefix?: string;
  /** The hub's JetStream domain, when the agent reaches the hub's NATS through a leaf node. */
  jsDomain?: string;
  logger?: Logger;
  requestTimeoutMs?: number;
  digestRetries?: number;
  /** Delay before retrying a failed fetch or connect; default 2 s, doubling to 30 s. */
  retryMs?: number;
  /**
   * Look at the head this often even without a notify (default 30 s; 0 = never): a notify
   * lost while a leaf node link or the hub's NATS was away must not leave a bundle unseen.
   * An unchanged head costs one small request.
   */
  recheckMs?: number;
  /** The watchdog's view: busy while connecting or fetching, idle otherwise (handing a bundle on included). */
  progress?: LoopProgress;
  /** Told when the NATS connection comes up (also after a reconnect) and goes down. */
  onConnection?: (up: boolean) => void;
}

/** A running pull: connected (or trying to connect) in the background. */
export interface BundlePuller {
  /** Look again now (e.g. after an import or a manual sync). */
  refresh(): void;
  connected(): boolean;
  stop(): Promise<void>;
}

/**
 * Pulls the cluster's bundle on start, on every notify message, on every (re)connect and
 * every `recheckMs`, handing each outcome to `onOutcome` one at a time. Never throws: NATS being away is
 * normal for an agent, which keeps enforcing what it has.
 */
export function startBundlePuller(
  options: BundlePullerOptions,
  onOutcome: (outcome: PullOutcome) => Promise<void>,
): BundlePuller {
  const log = options.logger ?? createLogger({ name: 'agent', level: 'silent' });
  const retryMs = options.retryMs ?? 2000;
  let stopped = false;
  let nc: NatsConnection | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;
  let knownDigest: string | undefined;
  /** The newest head a notify announced since the last pull began; a pull for any other reason drops it. */
  let announced: TransportHead | undefined;
  let sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        sleeping = undefined;
        resolve();
      }, ms);
      sleeping = { timer, wake: resolve };
    });

  const connectOptions: ConnectionOptions = {
    servers: options.servers,
    name: `flotilla-agent ${options.cluster}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    // Every pull is two requests or more; an async stack trace captured for each (two Errors a
    // request) cost the agents of a 1,000-cluster fleet more than the requests themselves. A
    // failed request is still reported with its subject (directGet's message).
    noAsyncTraces: true,
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
    ...(options.jwt || options.credentials
      ? {
          authenticator: (nonce?: string) => {
            const c = options.credentials?.() ?? { jwt: options.jwt ?? '', seed: options.seed ?? '' };
            return jwtAuthenticator(c.jwt, new TextEncoder().encode(c.seed))(nonce);
          },
        }
      : {}),
  };

  const scheduleRetry = () => {
    if (stopped || retryTimer) return;
    const delay = backoffDelay(failures, { baseMs: retryMs, maxMs: 30_000, maxDoublings: 5 });
    failures++;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      pull();
    }, delay);
  };

  const progress = options.progress;
  const pullOnce = async () => {
    const conn = nc;
    if (!conn || conn.isClosed()) return;
    const head = announced;
    announced = undefined;
    try {
      progress?.beat();
      const outcome = await fetchLatestBundle(conn, options.cluster, {
        timeoutMs: options.requestTimeoutMs,
        digestRetries: options.digestRetries,
        knownDigest,
        ...(head ? { head } : {}),
        ...(options.jsDomain ? { jsDomain: options.jsDomain } : {}),
        logger: log,
        onRequest: () => progress?.beat(),
      });
      failures = 0;
      // Handing the bundle on waits on the reconcile loop, which has its own watchdog.
      progress?.idle();
      if (outcome.kind === 'unchanged' || stopped) return;
      await onOutcome(outcome);
      // Handled (applied, held or refused): the same head again needs no second look.
      if (outcome.kind === 'bundle') knownDigest = outcome.head.digest;
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'bundle pull failed; will retry');
      scheduleRetry();
    } finally {
      progress?.idle();
    }
  };

  /** One pull at a time; a trigger during a pull runs one more afterwards. */
  const pull = (head?: TransportHead) => {
    if (stopped) return;
    // Notifies may arrive out of order (several hub replicas): keep the newest generation.
    if (!head) announced = undefined;
    else if (!announced || head.generation >= announced.generation) announced = head;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await pullOnce();
      } while (again && !stopped);
    })().finally(() => {
      running = undefined;
    });
  };

  const connectLoop = async () => {
    let attempt = 0;
    while (!stopped) {
      try {
        progress?.beat();
        nc = await connect(connectOptions);
      } catch (err) {
        progress?.idle();
        const delay = backoffDelay(attempt++, { baseMs: retryMs, maxMs: 30_000, maxDoublings: 5 });
        log.warn({ err: errorMessage(err), retryInMs: delay }, 'NATS connect failed; will retry');
        await sleep(delay);
        continue;
      }
      progress?.idle();
      if (stopped) {
        await nc.close();
        return;
      }
      attempt = 0;
      log.info({ servers: options.servers }, 'NATS connected');
      options.onConnection?.(true);
      const conn = nc;
      conn.subscribe(notifySubject(options.cluster), {
        callback: (_err, msg) => pull(noticeHead(msg?.data)),
      });
      (async () => {
        for await (const s of conn.status()) {
          if (s.type === 'reconnect') {
            log.info('NATS reconnected; pulling the latest bundle');
            options.onConnection?.(true);
            pull();
          } else if (s.type === 'disconnect') {
            log.warn('NATS disconnected');
            options.onConnection?.(false);
          }
        }
      })().catch(() => {});
      pull();
      const closedErr = await conn.closed();
      options.onConnection?.(false);
      if (stopped) return;
      log.warn(
        { err: closedErr ? errorMessage(closedErr) : undefined },
        'NATS connection closed; reconnecting',
      );
    }
  };
  const loop = connectLoop();
  const recheckMs = options.recheckMs ?? 30_000;
  const recheck = recheckMs > 0 ? setInterval(() => pull(), recheckMs) : undefined;
  recheck?.unref?.();

  return {
    refresh: () => pull(),
    connected: () => !!nc && !nc.isClosed() && !stopped,
    async stop() {
      stopped = true;
      if (recheck) clearInterval(recheck);
      if (retryTimer) clearTimeout(retryTimer);
      await nc?.close().catch(() => {});
      await running?.catch(() => {});
      if (sleeping) {
        clearTimeout(sleeping.timer);
        sleeping.wake();
      }
      await loop;
    },
  };
}
