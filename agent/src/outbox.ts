import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { create, fromJson, type JsonValue, toJson } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type ReportStatusRequest, ReportStatusRequestSchema } from '@flotilla/proto';
import { createLogger, type Logger } from '@flotilla/shared';
import { fsyncDir, writeFileDurable } from './state.js';

/** The body of a report: a full ClusterStatus, a Heartbeat, or a BundleRefused. */
export type ReportBody = ReportStatusRequest['body'];

export interface OutboxOptions {
  /** The state dir; the log is `<dir>/outbox.jsonl`. */
  dir: string;
  /** Above this many unacknowledged reports, superseded ones are summarised. Default 1000. */
  cap?: number;
  /** Acknowledgement records after which the log is rewritten. Default 200. */
  compactAfter?: number;
  /**
   * Bytes of log after which it is rewritten once every report is acknowledged. Default 64 KiB:
   * the log is not rewritten at every drain (a durable rewrite is a new file, two fsyncs and a
   * rename), only when what it holds is worth folding away.
   */
  compactBytes?: number;
  logger?: Logger;
  /**
   * Sequence numbers go on from no lower than this. The agent passes `seqFloorNow()`, so a
   * state dir that was lost, recreated or restored from an old copy never reuses a number the
   * hub already stored (the hub would take the new report for a duplicate). Default 1.
   */
  seqFloor?: bigint;
}

/**
 * The current time in microseconds: higher than any sequence number an outbox started earlier
 * can have reached, since one report per microsecond is far beyond what an agent sends.
 */
export function seqFloorNow(): bigint {
  return BigInt(Date.now()) * 1000n;
}

export const DEFAULT_OUTBOX_CAP = 1000;
const OUTBOX_FILE = 'outbox.jsonl';

/** What a summarisation removed, as data (it is also logged). */
export interface OutboxSummary {
  statuses: number;
  heartbeats: number;
  fromSeq: bigint;
  toSeq: bigint;
}

/**
 * The durable outbox of status reports. Every report gets the next sequence number and is
 * fsync'd to an append-only log before anyone may send it; it leaves the outbox only when
 * the hub acknowledges its seq (or a later one). Sequence numbers are strictly increasing
 * across restarts. Bounded: above the cap, superseded reports are collapsed (a full
 * ClusterStatus carries the whole state, so older ones and heartbeats add nothing), and
 * BundleRefused reports are never removed unacknowledged.
 */
export interface Outbox {
  append(body: ReportBody, observedAt?: Date): ReportStatusRequest;
  /** Unacknowledged reports, oldest first. */
  pending(): readonly ReportStatusRequest[];
  /** Drops every report with seq ≤ `seq`; returns how many. */
  ack(seq: bigint): number;
  /** The highest seq handed out so far (0n when none). */
  lastSeq(): bigint;
  /** Called after each durable append. Returns an unsubscribe function. */
  onAppend(listener: (report: ReportStatusRequest) => void): () => void;
  /** Summaries made so far (for tests and the status export). */
  summaries(): readonly OutboxSummary[];
  /** Flushes and closes the log. */
  close(): void;
}

interface ParsedOptions {
  path: string;
  dir: string;
  cap: number;
  compactAfter: number;
  compactBytes: number;
  seqFloor: bigint;
  logger: Logger;
}

function parseOptions(options: OutboxOptions): ParsedOptions {
  return {
    dir: options.dir,
    path: join(options.dir, OUTBOX_FILE),
    cap: options.cap ?? DEFAULT_OUTBOX_CAP,
    compactAfter: options.compactAfter ?? 200,
    compactBytes: options.compactBytes ?? 64 * 1024,
    seqFloor: options.seqFloor ?? 1n,
    logger: options.logger ?? createLogger({ name: 'agent', level: 'silent' }),
  };
}

/** One line of the log: a header, a report, or an acknowledgement. */
type LogLine = { h: { nextSeq: string } } | { r: JsonValue } | { a: string };

export function createOutbox(options: OutboxOptions): Outbox {
  const o = parseOptions(options);
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const replayed = replayOutbox(o.path, o.logger);
  let nextSeq = replayed.nextSeq > o.seqFloor ? replayed.nextSeq : o.seqFloor;
  let reports = replayed.reports;
  let ackLines = 0;
  const summaries: OutboxSummary[] = [];
  const listeners = new Set<(r: ReportStatusRequest) => void>();

  let fd: number | undefined;
  /** Bytes in the log since it was last rewritten. */
  let logBytes = 0;
  const rewrite = () => {
    if (fd !== undefined) closeSync(fd);
    const body = [
      JSON.stringify({ h: { nextSeq: String(nextSeq) } }),
      ...reports.map((r) => JSON.stringify({ r: toJson(ReportStatusRequestSchema, r) })),
    ];
    const text = `${body.join('\n')}\n`;
    writeFileDurable(o.path, text);
    fd = openSync(o.path, 'a', 0o600);
    ackLines = 0;
    logBytes = Buffer.byteLength(text);
  };
  /**
   * Appends a line; `durable` waits for the disk. An acknowledgement need not: lost in a crash,
   * it only makes the agent send a report the hub already stored again, which the hub answers
   * as a duplicate; and the next durable line (a report) takes it to the disk anyway.
   */
  const appendLine = (line: LogLine, durable: boolean) => {
    if (fd === undefined) throw new Error(`${o.path}: outbox is closed`);
    logBytes += writeSync(fd, `${JSON.stringify(line)}\n`);
    if (durable) fsyncSync(fd);
  };
  // Start from a compact log: replayed acks and torn lines are folded away.
  rewrite();
  fsyncDir(o.dir);

  const summarise = () => {
    const newestStatus = reports.findLastIndex((r) => r.body.case === 'status');
    const last = reports.length - 1;
    const removed = { statuses: 0, heartbeats: 0, fromSeq: 0n, toSeq: 0n };
    reports = reports.filter((r, i) => {
      const superseded =
        (r.body.case === 'status' && i < newestStatus) || (r.body.case === 'heartbeat' && i < last);
      if (!superseded) return true;
      if (r.body.case === 'status') removed.statuses++;
      else removed.heartbeats++;
      if (!removed.fromSeq) removed.fromSeq = r.seq;
      removed.toSeq = r.seq;
      return false;
    });
    if (removed.statuses + removed.heartbeats === 0) return;
    summaries.push(removed);
    o.logger.warn(
      {
        summarisedStatuses: removed.statuses,
        summarisedHeartbeats: removed.heartbeats,
        fromSeq: String(removed.fromSeq),
        toSeq: String(removed.toSeq),
        kept: reports.length,
      },
      'outbox: over its cap; superseded status reports collapsed into the newest',
    );
    rewrite();
  };

  return {
    append(body, observedAt = new Date()) {
      const report = create(ReportStatusRequestSchema, {
        seq: nextSeq,
        observedAt: timestampFromDate(observedAt),
        body,
      });
      appendLine({ r: toJson(ReportStatusRequestSchema, report) }, true);
      nextSeq++;
      reports.push(report);
      if (reports.length > o.cap) summarise();
      for (const l of listeners) l(report);
      return report;
    },
    pending: () => reports,
    ack(seq) {
      const before = reports.length;
      reports = reports.filter((r) => r.seq > seq);
      const removed = before - reports.length;
      if (removed === 0) return 0;
      if (ackLines + 1 >= o.compactAfter || (reports.length === 0 && logBytes >= o.compactBytes)) rewrite();
      else {
        appendLine({ a: String(seq) }, false);
        ackLines++;
      }
      return removed;
    },
    lastSeq: () => nextSeq - 1n,
    onAppend(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    summaries: () => summaries,
    close() {
      if (fd === undefined) return;
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
    },
  };
}

/**
 * Reads the log without taking it over: for a status export while `run` holds the outbox.
 * A torn last line (a crash mid-append) was never handed out, so it is skipped.
 */
export function replayOutbox(
  path: string,
  logger?: Logger,
): { nextSeq: bigint; reports: ReportStatusRequest[] } {
  let nextSeq = 1n;
  let reports: ReportStatusRequest[] = [];
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const lines = text.split('\n').filter((l) => l.trim());
  for (const [i, line] of lines.entries()) {
    let entry: LogLine;
    try {
      entry = JSON.parse(line) as LogLine;
    } catch (err) {
      if (i === lines.length - 1) {
        logger?.warn({ path }, 'outbox: skipping a torn last line');
        continue;
      }
      throw new Error(`${path}: line ${i + 1} is not JSON`, { cause: err });
    }
    if ('h' in entry) {
      const n = BigInt(entry.h.nextSeq);
      if (n > nextSeq) nextSeq = n;
    } else if ('r' in entry) {
      const report = fromJson(ReportStatusRequestSchema, entry.r);
      reports.push(report);
      if (report.seq >= nextSeq) nextSeq = report.seq + 1n;
    } else if ('a' in entry) {
      const acked = BigInt(entry.a);
      reports = reports.filter((r) => r.seq > acked);
      if (acked >= nextSeq) nextSeq = acked + 1n;
    }
  }
  return { nextSeq, reports };
}

/** The outbox log's path in a state dir. */
export function outboxPath(dir: string): string {
  return join(dir, OUTBOX_FILE);
}
