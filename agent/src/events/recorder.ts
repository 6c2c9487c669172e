import { createLogger, errorMessage, type Logger } from '@flotilla/shared';

/** `Normal` for what went as intended, `Warning` for what someone should look at. */
export type EventType = 'Normal' | 'Warning';

/** The object an event is about, as a core/v1 ObjectReference. */
export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  /** Empty for a cluster-scoped object: its events live in `default`, as client-go puts them. */
  namespace: string;
  /** The live object's uid: `kubectl describe` finds an object's events by it. */
  uid?: string;
  resourceVersion?: string;
}

/** One thing that happened to one object, before it is a Kubernetes Event. */
export interface ObjectEvent {
  object: InvolvedObject;
  type: EventType;
  /** UpperCamelCase, short, machine-readable: `Created`, `Healed`, `ApplyFailed`. */
  reason: string;
  /** What the agent did: `Apply`, `Heal`, `Prune`. */
  action: string;
  message: string;
  annotations?: Record<string, string>;
}

/** A core/v1 Event as written to the API server. */
export interface KubeEvent {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  involvedObject: InvolvedObject;
  reason: string;
  message: string;
  type: EventType;
  action: string;
  source: { component: string; host?: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
}

/** Where events go: the API server (kube-sink.ts), or a test's list. */
export interface EventSink {
  create(event: KubeEvent): Promise<void>;
  /** Merge-patches `count`, `lastTimestamp` and `message` of an existing event. */
  patch(
    namespace: string,
    name: string,
    patch: Pick<KubeEvent, 'count' | 'lastTimestamp' | 'message'>,
  ): Promise<void>;
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** `source.component` and `reportingComponent`; default `flotilla-agent`. */
  component?: string;
  /** `source.host` and `reportingInstance`: which agent wrote it (its pod name). */
  instance: string;
  logger?: Logger;
  now?: () => Date;
  /**
   * The spam filter, per object: at most `burst` events at once, then one more per `refillMs`
   * (client-go's defaults: 25, and one per 5 minutes). Repeats of one event count too.
   */
  burst?: number;
  refillMs?: number;
  /** How many distinct events are remembered for counting repeats (client-go: 4096). */
  cacheSize?: number;
  /** Events waiting to be written beyond this are dropped: a slow API server never grows the agent; default 1000. */
  maxPending?: number;
  /** One write's time limit; default 15 s. */
  timeoutMs?: number;
  /** Tells a status code of a failed write; 404 on a patch re-creates the event. */
  statusOf?: (err: unknown) => number;
}

export interface EventRecorder {
  /** Queues the event; never throws and never waits for the API server. */
  record(event: ObjectEvent): void;
  /** Resolves once every queued event is written (or has failed), or after `timeoutMs`. */
  flush(timeoutMs?: number): Promise<void>;
  /** What happened so far: written (created or counted), dropped by the spam filter or a full queue, failed. */
  stats(): { created: number; counted: number; filtered: number; dropped: number; failed: number };
}

interface Cached {
  namespace: string;
  name: string;
  count: number;
  firstTimestamp: string;
}

const MAX_MESSAGE = 1024;

/** A Kubernetes time: RFC 3339 in whole seconds, as metav1.Time serializes. */
function kubeTime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** `<object>.<hex nanoseconds>` as client-go names events, kept a valid DNS subdomain. */
function eventName(objectName: string, nanos: bigint): string {
  const base =
    objectName
      .toLowerCase()
      .replace(/[^a-z0-9.-]+/g, '-')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
      .slice(0, 230) || 'object';
  return `${base}.${nanos.toString(16)}`;
}

/**
 * Writes Kubernetes Events the way client-go's recorder does, so a heal loop cannot flood the
 * API server: a repeat of an event (same object, type, reason and message) bumps the `count` and
 * `lastTimestamp` of the one already written instead of adding another, a token bucket per
 * object drops events beyond its burst, and writes run one at a time in the background from a
 * bounded queue. Events are best effort: a failed write is logged (a missing permission once,
 * at warn), never retried, and never fails the caller.
 */
export function createEventRecorder(options: EventRecorderOptions): EventRecorder {
  const component = options.component ?? 'flotilla-agent';
  const log = options.logger ?? createLogger({ name: 'agent-events', level: 'silent' });
  const now = options.now ?? (() => new Date());
  const burst = options.burst ?? 25;
  const refillMs = options.refillMs ?? 5 * 60_000;
  const cacheSize = options.cacheSize ?? 4096;
  const maxPending = options.maxPending ?? 1000;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const statusOf = options.statusOf ?? (() => 0);
  const cache = new Map<string, Cached>();
  const buckets = new Map<string, { tokens: number; at: number }>();
  const stats = { created: 0, counted: 0, filtered: 0, dropped: 0, failed: 0 };
  const warned = new Set<number>();
  let pending = 0;
  let queue: Promise<void> = Promise.resolve();
  let lastNanos = 0n;

  /** Takes a token of the object's bucket, refilled at one per refillMs up to burst. */
  const allow = (objectKey: string, at: number): boolean => {
    const b = buckets.get(objectKey) ?? { tokens: burst, at };
    b.tokens = Math.min(burst, b.tokens + (at - b.at) / refillMs);
    b.at = at;
    buckets.delete(objectKey);
    buckets.set(objectKey, b);
    if (buckets.size > cacheSize) buckets.delete(buckets.keys().next().value as string);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };

  const remember = (key: string, value: Cached) => {
    cache.delete(key);
    cache.set(key, value);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
  };

  const withTimeout = <T>(p: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref?.();
    });
    return Promise.race([p, limit]).finally(() => clearTimeout(timer));
  };

  const failed = (event: KubeEvent, err: unknown) => {
    stats.failed++;
    const status = statusOf(err);
    const fields = {
      event: `${event.metadata.namespace}/${event.metadata.name}`,
      reason: event.reason,
      err: errorMessage(err),
    };
    if (warned.has(status)) {
      log.debug(fields, 'event not written');
      return;
    }
    warned.add(status);
    log.warn(
      fields,
      status === 403
        ? 'cannot write Kubernetes Events: the agent needs create and patch on events'
        : 'event not written (further failures like it are logged at debug)',
    );
  };

  const write = async (key: string, event: KubeEvent) => {
    const seen = cache.get(key);
    if (seen) {
      const next = { ...seen, count: seen.count + 1 };
      try {
        await withTimeout(
          options.sink.patch(seen.namespace, seen.name, {
            count: next.count,
            lastTimestamp: event.lastTimestamp,
            message: event.message,
          }),
        );
        remember(key, next);
        stats.counted++;
        return;
      } catch (err) {
        // Expired or deleted since: write it anew, keeping the count (as client-go does).
        if (statusOf(err) !== 404) return failed(event, err);
        event = { ...event, count: next.count, firstTimestamp: seen.firstTimestamp };
      }
    }
    try {
      await withTimeout(options.sink.create(event));
      remember(key, {
        namespace: event.metadata.namespace,
        name: event.metadata.name,
        count: event.count,
        firstTimestamp: event.firstTimestamp,
      });
      stats.created++;
    } catch (err) {
      failed(event, err);
    }
  };

  return {
    record(e) {
      const at = now();
      const ref = e.object;
      const objectKey = [ref.apiVersion, ref.kind, ref.namespace, ref.name, ref.uid ?? ''].join('\u0000');
      if (!allow(objectKey, at.getTime())) {
        stats.filtered++;
        log.debug(
          { object: `${ref.kind} ${ref.namespace}/${ref.name}`, reason: e.reason },
          'event filtered: too many for this object',
        );
        return;
      }
      if (pending >= maxPending) {
        stats.dropped++;
        log.debug({ reason: e.reason }, 'event dropped: the queue is full');
        return;
      }
      const message = e.message.length > MAX_MESSAGE ? `${e.message.slice(0, MAX_MESSAGE - 1)}…` : e.message;
      const key = [objectKey, e.type, e.reason, message].join('\u0000');
      // Unique and increasing even for two events in the same millisecond.
      let nanos = BigInt(at.getTime()) * 1_000_000n;
      if (nanos <= lastNanos) nanos = lastNanos + 1n;
      lastNanos = nanos;
      const time = kubeTime(at);
      const event: KubeEvent = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: {
          name: eventName(ref.name, nanos),
          namespace: ref.namespace || 'default',
          ...(e.annotations ? { annotations: e.annotations } : {}),
        },
        involvedObject: {
          apiVersion: ref.apiVersion,
          kind: ref.kind,
          name: ref.name,
          ...(ref.namespace ? { namespace: ref.namespace } : {}),
          ...(ref.uid ? { uid: ref.uid } : {}),
          ...(ref.resourceVersion ? { resourceVersion: ref.resourceVersion } : {}),
        } as InvolvedObject,
        reason: e.reason,
        message,
        type: e.type,
        action: e.action,
        source: { component, host: options.instance },
        reportingComponent: component,
        reportingInstance: options.instance,
        firstTimestamp: time,
        lastTimestamp: time,
        count: 1,
      };
      pending++;
      queue = queue.then(() => write(key, event)).finally(() => pending--);
    },
    async flush(limitMs = timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        queue,
        new Promise<void>((resolve) => {
          // Not unref'd: a flush before exit waits for the writes it names.
          timer = setTimeout(resolve, limitMs);
        }),
      ]);
      clearTimeout(timer);
    },
    stats: () => ({ ...stats }),
  };
}
