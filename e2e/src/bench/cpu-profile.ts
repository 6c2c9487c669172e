import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/** The parts of a V8 `.cpuprofile` (what `node --cpu-prof` writes) that self time needs. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  /** Microseconds on the monotonic clock, the one `process.hrtime` reads. */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A window of the profiled process's life, in microseconds of the monotonic clock. */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

export interface SelfTime {
  /** `functionName (file:line)`, the file relative to `root`. */
  frame: string;
  ms: number;
  /** Share of all samples in the windows, idle included. */
  percent: number;
}

/** Now on the monotonic clock in microseconds, comparable with a profile's sample times. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * The functions with the most self time in the given windows of a CPU profile. V8 stamps
 * samples with the same monotonic clock `process.hrtime` reads, so windows measured by the
 * benchmark process select the samples the profiled hub took meanwhile.
 */
export function topSelfTime(
  path: string,
  windows: readonly ProfileWindow[],
  root: string,
  top = 15,
): SelfTime[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const frames = new Map(
    profile.nodes.map((n) => {
      const { functionName, url, lineNumber } = n.callFrame;
      const file = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url;
      const name = functionName || '(anonymous)';
      return [n.id, file ? `${name} (${file}:${lineNumber + 1})` : name];
    }),
  );
  const self = new Map<string, number>();
  let total = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (!windows.some((w) => t >= w.fromUs && t <= w.toUs)) continue;
    // A sample stands for the time since the previous one.
    const frame = frames.get(profile.samples[i]!) ?? '?';
    self.set(frame, (self.get(frame) ?? 0) + delta);
    total += delta;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([frame, us]) => ({ frame, ms: Math.round(us / 1000), percent: total ? (100 * us) / total : 0 }));
}
