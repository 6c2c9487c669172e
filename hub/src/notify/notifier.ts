import { errorMessage, type Logger } from '@flotilla/shared';
import { and, asc, desc, eq, lte } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { notifications } from '../db/schema.js';

/** What a receiver can be told of. */
export const NOTIFY_KINDS = [
  'promotion.made',
  'promotion.refused',
  'promotion.approved',
  'rollout.halted',
  'cluster.degraded',
  'cluster.disconnected',
  'cluster.drift',
  'render.error',
] as const;
export type NotifyKind = (typeof NOTIFY_KINDS)[number];

/** One event, as the generic JSON body carries it. */
export interface NotifyEvent {
  kind: NotifyKind;
  /** What makes two events the same one: a receiver gets each key once. */
  key: string;
  at: string;
  summary: string;
  environment?: string;
  cluster?: string;
  details?: Record<string, unknown>;
}

/** A webhook receiver; its URL may hold a secret and is never logged, stored or shown. */
export interface Receiver {
  name: string;
  url: string;
  /** `json`: the event as is; `slack`: `{text}` as Slack's incoming webhooks take it. */
  format: 'json' | 'slack';
  /** The kinds it wants; all when absent. */
  events?: NotifyKind[];
}

/** One delivery of `flotilla notify history -o json`. */
export interface Delivery {
  id: number;
  receiver: string;
  kind: string;
  key: string;
  summary: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export interface Notifier {
  /** Queues an event for every receiver that wants it; never waits on a receiver and never throws. */
  emit(event: Omit<NotifyEvent, 'at'> & { at?: string }): void;
  history(limit?: number): Promise<Delivery[]>;
  /** Delivers what is due now (the loop does this on its own; tests call it). */
  deliverDue(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export interface NotifierOptions {
  db: Db;
  receivers: Receiver[];
  logger: Logger;
  /** First retry after this, doubling up to maxDelayMs; defaults 1 s and 5 min. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** After this many failed attempts a delivery is given up as failed; default 100. */
  maxAttempts?: number;
  /** One POST's time limit; default 5 s. */
  timeoutMs?: number;
  /** How often due deliveries are looked for; default 1 s. */
  pollMs?: number;
  now?: () => Date;
  /** Only the leading hub replica delivers (two would post the same row twice). */
  active?: () => boolean;
}

/** A receiver's reply or failure as text that cannot hold its URL. */
function safeError(err: unknown, url: string): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const text = cause?.code ?? cause?.message ?? errorMessage(err);
  return text.split(url).join('<receiver url>');
}

export function body(receiver: Receiver, event: NotifyEvent): string {
  if (receiver.format === 'slack')
    return JSON.stringify({ text: `[flotilla] ${event.kind}: ${event.summary}` });
  return JSON.stringify(event);
}

/**
 * Webhook notifications with an outbox in the database: an event becomes one row per
 * receiver (unique by receiver and key, so it is sent once however often it is emitted), and a
 * delivery loop posts due rows, each on its own with a time limit, retrying failures with
 * exponential backoff. Emitting is an insert done in the background: a slow or dead receiver
 * never delays the hub's work.
 */
export function createNotifier(options: NotifierOptions): Notifier {
  const { db, logger, receivers } = options;
  const now = options.now ?? (() => new Date());
  const base = options.baseDelayMs ?? 1000;
  const max = options.maxDelayMs ?? 300_000;
  const maxAttempts = options.maxAttempts ?? 100;
  const timeoutMs = options.timeoutMs ?? 5000;
  const byName = new Map(receivers.map((r) => [r.name, r]));
  const inFlight = new Set<number>();
  let timer: NodeJS.Timeout | undefined;
  let delivering: Promise<void> | undefined;

  const deliverOne = async (row: typeof notifications.$inferSelect) => {
    const receiver = byName.get(row.receiver);
    if (!receiver) return;
    inFlight.add(row.id);
    try {
      let error: string | undefined;
      try {
        const res = await fetch(receiver.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: body(receiver, row.event as NotifyEvent),
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (!res.ok) error = `HTTP ${res.status}`;
      } catch (err) {
        error = safeError(err, receiver.url);
      }
      const attempts = row.attempts + 1;
      if (!error) {
        await db
          .update(notifications)
          .set({ state: 'delivered', attempts, deliveredAt: now(), lastError: null })
          .where(eq(notifications.id, row.id));
        return;
      }
      const delay = Math.min(max, base * 2 ** (attempts - 1));
      const giveUp = attempts >= maxAttempts;
      await db
        .update(notifications)
        .set({
          state: giveUp ? 'failed' : 'pending',
          attempts,
          lastError: error,
          nextAt: new Date(now().getTime() + delay),
        })
        .where(eq(notifications.id, row.id));
      logger.warn(
        { receiver: receiver.name, kind: (row.event as NotifyEvent).kind, attempts, err: error },
        giveUp ? 'notification given up' : 'notification failed; retrying',
      );
    } finally {
      inFlight.delete(row.id);
    }
  };

  const deliverDue = async () => {
    const due = await db
      .select()
      .from(notifications)
      .where(and(eq(notifications.state, 'pending'), lte(notifications.nextAt, now())))
      .orderBy(asc(notifications.id))
      .limit(100);
    // Each delivery on its own: one slow receiver holds up only its own rows.
    for (const row of due) if (!inFlight.has(row.id)) void deliverOne(row).catch(() => undefined);
  };

  const kick = () => {
    if (delivering || (options.active && !options.active())) return;
    delivering = deliverDue()
      .catch((err) => logger.warn({ err: errorMessage(err) }, 'notification delivery pass failed'))
      .finally(() => {
        delivering = undefined;
      });
  };

  return {
    emit(input) {
      const event: NotifyEvent = { ...input, at: input.at ?? now().toISOString() };
      const wanted = receivers.filter((r) => !r.events || r.events.includes(event.kind));
      if (wanted.length === 0) return;
      void db
        .insert(notifications)
        .values(
          wanted.map((r) => ({ receiver: r.name, key: `${event.kind}:${event.key}`, event, nextAt: now() })),
        )
        .onConflictDoNothing()
        .then(kick)
        .catch((err) => logger.warn({ err: errorMessage(err), kind: event.kind }, 'notification not queued'));
    },
    async history(limit = 200) {
      const rows = await db.select().from(notifications).orderBy(desc(notifications.id)).limit(limit);
      return rows.map((r) => ({
        id: r.id,
        receiver: r.receiver,
        kind: (r.event as NotifyEvent).kind,
        key: r.key,
        summary: (r.event as NotifyEvent).summary,
        state: r.state,
        attempts: r.attempts,
        lastError: r.lastError,
        createdAt: r.createdAt.toISOString(),
        deliveredAt: r.deliveredAt?.toISOString() ?? null,
      }));
    },
    deliverDue,
    start() {
      if (timer || receivers.length === 0) return;
      timer = setInterval(kick, options.pollMs ?? 1000);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await delivering;
    },
  };
}
