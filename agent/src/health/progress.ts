/**
 * How the agent's long-running loops tell a watchdog they are alive, and the watchdog that
 * decides when one is wedged. A loop is *busy* while it waits on something that must end on
 * its own (an API request, a watch stream the server ends, a NATS connect, a status stream
 * with reports in flight) and *idle* while it waits on nothing it owes (a timer of its own, a
 * notify, the next drift). A loop is stalled when it has been busy without progress for longer
 * than its bound: a hung HTTP/2 stream or a promise that never settles. Idle loops are never
 * stalled, so a quiet cluster, a backoff or an unreachable hub is not mistaken for a wedge
 * (restarting would not help those).
 */

/** The loops the agent runs. */
export const LOOPS = ['pull', 'watch', 'reconcile', 'status'] as const;
export type LoopName = (typeof LOOPS)[number];

/**
 * A loop's side of the watchdog. `part` names one of several streams a loop runs at once (the
 * watch runs one per kind and namespace); each part is judged on its own, so one silent
 * stream is not hidden by busy neighbours.
 */
export interface LoopProgress {
  /** Progress now; the loop is busy and owes the next sign of life within the bound. */
  beat(part?: string): void;
  /** Waiting on nothing it owes (or gone): silence is fine until the next beat. */
  idle(part?: string): void;
}

/** One loop as the watchdog sees it. */
export interface LoopState {
  loop: LoopName;
  /** `idle`: owes nothing now; `busy`: within its bound; `stalled`: busy and silent past it. */
  state: 'idle' | 'busy' | 'stalled';
  /** How long its most silent busy part has gone without progress (0 when idle). */
  silentMs: number;
  boundMs: number;
  /** The most silent busy part, when the loop has parts. */
  part?: string;
  /** When it last made progress at all (epoch ms), 0 for never. */
  lastProgressAt: number;
}

export interface Watchdog {
  loop(name: LoopName): LoopProgress;
  /** Every loop's state now, in LOOPS order. */
  check(): LoopState[];
}

export interface WatchdogOptions {
  /** How long a busy loop may go without progress; default 300 s. */
  boundMs?: number;
  now?: () => number;
}

export const DEFAULT_STALL_TIMEOUT_MS = 300_000;

export function createWatchdog(options: WatchdogOptions = {}): Watchdog {
  const boundMs = options.boundMs ?? DEFAULT_STALL_TIMEOUT_MS;
  const now = options.now ?? Date.now;
  /** Per loop: the busy parts and since when each has been silent, and the last progress of any. */
  const loops = new Map<LoopName, { busy: Map<string, number>; last: number }>(
    LOOPS.map((l) => [l, { busy: new Map(), last: 0 }]),
  );
  const progress = new Map<LoopName, LoopProgress>(
    LOOPS.map((name) => {
      const l = loops.get(name)!;
      return [
        name,
        {
          beat(part = '') {
            l.last = now();
            l.busy.set(part, l.last);
          },
          idle(part = '') {
            l.busy.delete(part);
          },
        },
      ];
    }),
  );
  return {
    loop: (name) => progress.get(name)!,
    check() {
      const t = now();
      return LOOPS.map((loop) => {
        const l = loops.get(loop)!;
        let oldest: [string, number] | undefined;
        for (const entry of l.busy) if (!oldest || entry[1] < oldest[1]) oldest = entry;
        if (!oldest) return { loop, state: 'idle', silentMs: 0, boundMs, lastProgressAt: l.last };
        const silentMs = t - oldest[1];
        return {
          loop,
          state: silentMs > boundMs ? 'stalled' : 'busy',
          silentMs,
          boundMs,
          ...(oldest[0] ? { part: oldest[0] } : {}),
          lastProgressAt: l.last,
        };
      });
    },
  };
}
