import { create } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import {
  AgentService,
  createGrpcClient,
  type ReportStatusRequest,
  type ReportStatusResponse,
  RotateCredentialRequestSchema,
  type RotateCredentialResponse,
} from '@flotilla/proto';
import { AGENT_AUTH_METADATA, backoffDelay, createLogger, errorMessage, type Logger } from '@flotilla/shared';
import { type ChannelCredentials, type ClientDuplexStream, Metadata } from '@grpc/grpc-js';
import type { LoopProgress } from './health/progress.js';
import type { Outbox } from './outbox.js';

export interface StatusClientOptions {
  /** The hub's gRPC address, `HOST:PORT`. */
  address: string;
  credentials: ChannelCredentials;
  /** The agent credential from registration. */
  agentCredential: string;
  /**
   * Credential rotation: when `due()`, the client trades its credential for a new one (before
   * opening a stream, or on an open one, which it then reopens) and hands it to `rotated` to
   * keep before using it. A failed rotation keeps the current credential and is retried.
   */
  rotation?: {
    due(): boolean;
    /** `nats`: the cluster's new NATS user, when the hub issued one with the credential. */
    rotated(credential: string, expiresAt: Date, nats?: { jwt: string; seed: string }): Promise<void>;
    /** Least time between two attempts; default 60 s. */
    retryMs?: number;
    /** The agent's age recipient, registered again with each rotation. */
    ageRecipient?: () => string | undefined;
  };
  outbox: Outbox;
  /** The hub's SyncCommand (manual sync policy). */
  onSync?: (generation: number) => void;
  /** The hub's pacing for this stream (heartbeat interval), sent when the stream opens. */
  onSettings?: (settings: { heartbeatMs: number }) => void;
  logger?: Logger;
  /** Reconnect backoff: base, doubling up to max; defaults 1 s and 10 s. */
  retryMs?: number;
  retryMaxMs?: number;
  /**
   * A stream that has reports in flight and hears nothing back for this long is treated
   * as dead and reopened (a call can hang in a channel that never reconnects); default 20 s.
   */
  ackTimeoutMs?: number;
  /**
   * The watchdog's view: busy from opening a stream until it is live, and while reports are in
   * flight; idle while live with nothing unanswered, and between reconnects.
   */
  progress?: LoopProgress;
  /** Told when the stream becomes live (the hub answered) and when it ends. */
  onConnection?: (up: boolean) => void;
}

export interface StatusClient {
  connected(): boolean;
  stop(): Promise<void>;
}

/**
 * Drains the outbox into the hub's ReportStatus stream. On every (re)connect it resends
 * every unacknowledged report in seq order, then streams new ones as they are appended;
 * an Ack{seq} drops everything up to seq from the outbox. The hub tolerates duplicates
 * (a report sent on a stream that broke before its ack is sent again), so nothing is
 * lost and nothing is reordered.
 */
export function startStatusClient(options: StatusClientOptions): StatusClient {
  const log = options.logger ?? createLogger({ name: 'agent', level: 'silent' });
  const retryMs = options.retryMs ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? 10_000;
  const newClient = () =>
    createGrpcClient(AgentService, options.address, options.credentials, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      // The channel's own reconnect backoff grows to 120 s by default: a hub back from an
      // outage would wait that long for its agents. Keep it as short as ours.
      'grpc.initial_reconnect_backoff_ms': Math.min(retryMs, retryMaxMs),
      'grpc.max_reconnect_backoff_ms': retryMaxMs,
    });
  let client = newClient();
  let stopped = false;
  let credential = options.agentCredential;
  let rotating: Promise<boolean> | undefined;
  let lastRotationAttempt = 0;
  /** Set while the client itself ends the stream to reopen it with a rotated credential. */
  let reopening = false;
  let stream: ClientDuplexStream<ReportStatusRequest, ReportStatusResponse> | undefined;
  let sentSeq = 0n;
  let live = false;
  let attempt = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  const ackTimeoutMs = options.ackTimeoutMs ?? 20_000;
  /** Since when reports have been in flight on this stream without an answer. */
  let waitingSince: number | undefined;

  const progress = options.progress;
  const send = (report: ReportStatusRequest) => {
    if (!stream || report.seq <= sentSeq) return;
    stream.write(report);
    sentSeq = report.seq;
    if (waitingSince === undefined) progress?.beat();
    waitingSince ??= Date.now();
  };
  /** Trades the credential for a new one when due; true when it did. */
  const rotateIfDue = (): Promise<boolean> => {
    const rotation = options.rotation;
    if (!rotation || stopped || !rotation.due()) return Promise.resolve(false);
    if (rotating) return rotating;
    if (Date.now() - lastRotationAttempt < (rotation.retryMs ?? 60_000)) return Promise.resolve(false);
    lastRotationAttempt = Date.now();
    rotating = (async () => {
      const metadata = new Metadata();
      metadata.set(AGENT_AUTH_METADATA, `Bearer ${credential}`);
      try {
        const res = await new Promise<RotateCredentialResponse>((resolve, reject) =>
          client.rotateCredential(
            create(RotateCredentialRequestSchema, { ageRecipient: rotation.ageRecipient?.() ?? '' }),
            metadata,
            { deadline: Date.now() + 15_000 },
            (err, r) => (err || !r ? reject(err) : resolve(r)),
          ),
        );
        const expiresAt = res.expiresAt ? timestampDate(res.expiresAt) : new Date(0);
        // Kept first: the hub honours the old credential until the new one is used.
        await rotation.rotated(
          res.agentCredential,
          expiresAt,
          res.nats?.jwt ? { jwt: res.nats.jwt, seed: res.nats.seed } : undefined,
        );
        credential = res.agentCredential;
        // Only failures are throttled: the next rotation is due on its own schedule.
        lastRotationAttempt = 0;
        log.info({ expiresAt: expiresAt.toISOString() }, 'agent credential rotated');
        return true;
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'agent credential rotation failed; keeping the current one');
        return false;
      } finally {
        rotating = undefined;
      }
    })();
    return rotating;
  };

  const watchdog = setInterval(
    () => {
      // A stream can stay open for weeks: rotate on it, then reopen with the new credential.
      if (stream && live)
        void rotateIfDue().then((rotated) => {
          if (rotated && stream) {
            reopening = true;
            stream.cancel();
          }
        });
      if (stream && waitingSince !== undefined && Date.now() - waitingSince > ackTimeoutMs) {
        log.warn(
          { waitedMs: Date.now() - waitingSince },
          'status stream silent with reports in flight; reopening',
        );
        waitingSince = undefined;
        // The channel itself may be stuck (a TLS handshake that never completes has no
        // timeout in grpc-js): start over with a new one, not just a new call.
        const stuck = client;
        client = newClient();
        stream.cancel();
        stuck.close();
      }
    },
    Math.min(1000, ackTimeoutMs),
  );
  watchdog.unref();
  const unsubscribe = options.outbox.onAppend(send);

  const reconnectLater = () => {
    progress?.idle();
    if (stopped || retryTimer) return;
    const delay = backoffDelay(attempt++, { baseMs: retryMs, maxMs: retryMaxMs, maxDoublings: 8 });
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      open();
    }, delay);
  };

  const open = () => {
    if (stopped) return;
    progress?.beat();
    void rotateIfDue().then(openStream);
  };

  const openStream = () => {
    if (stopped) return;
    const metadata = new Metadata();
    metadata.set(AGENT_AUTH_METADATA, `Bearer ${credential}`);
    const s = client.reportStatus(metadata);
    stream = s;
    sentSeq = 0n;
    live = false;
    waitingSince = undefined;
    let ended = false;
    const end = (why: string, err?: unknown) => {
      if (ended) return;
      ended = true;
      if (stream === s) stream = undefined;
      if (live) options.onConnection?.(false);
      live = false;
      if (!stopped) {
        if (reopening) log.info('status stream reopened with the rotated credential');
        else
          log.warn(
            { err: err ? errorMessage(err) : undefined, pending: options.outbox.pending().length },
            why,
          );
        reopening = false;
        reconnectLater();
      }
    };
    s.on('data', (res: ReportStatusResponse) => {
      if (!live) {
        log.info({ address: options.address }, 'status stream connected');
        options.onConnection?.(true);
      }
      live = true;
      attempt = 0;
      progress?.beat();
      if (res.body.case === 'ack') {
        options.outbox.ack(res.body.value.seq);
        waitingSince = res.body.value.seq >= sentSeq ? undefined : Date.now();
      } else if (res.body.case === 'sync') {
        options.onSync?.(Number(res.body.value.generation));
      } else if (res.body.case === 'settings') {
        const seconds = res.body.value.heartbeatSeconds;
        if (seconds > 0) options.onSettings?.({ heartbeatMs: seconds * 1000 });
      }
      // Live with nothing unanswered: nothing is owed until the next report.
      if (waitingSince === undefined) progress?.idle();
    });
    s.on('error', (err) => end('status stream failed; reconnecting', err));
    s.on('end', () => end('status stream ended by the hub; reconnecting'));
    s.on('close', () => end('status stream closed; reconnecting'));
    // Everything unacknowledged, oldest first; new reports follow through onAppend.
    for (const report of options.outbox.pending()) send(report);
  };
  open();

  return {
    connected: () => live,
    async stop() {
      stopped = true;
      unsubscribe();
      clearInterval(watchdog);
      if (retryTimer) clearTimeout(retryTimer);
      const s = stream;
      stream = undefined;
      if (s) {
        s.end();
        s.cancel();
      }
      client.close();
    },
  };
}
