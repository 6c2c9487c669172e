import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/** The parts of a V8 `.cpuprofile` (what `node --cpu-prof` writes) that self time needs. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
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

/** Where a profiled process spent the windows: functions by self time, and `under` frames by total time. */
export interface ProfileSummary {
  self: SelfTime[];
  /** Frames of the hub's own code (`hub/src/`, `hub/dist/`), by time with them on the stack. */
  inclusive: SelfTime[];
  /** Self time by where the code lives: an npm package, a folder of ours, node:, native, idle, GC. */
  areas: SelfTime[];
}

/** `pglite`, `hub/src/status`, `node:internal`, `(garbage collector)`…: the area a frame's file belongs to. */
function areaOf(file: string, frame: string): string {
  if (!file) return frame.startsWith('(') ? frame.replace(/ \(.*$/, '') : 'native (fs, crypto, zlib, …)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (pkg) return pkg[1]!;
  if (file.startsWith('node:')) return 'node: internals';
  if (file.startsWith('wasm:')) return 'wasm';
  return file.split('/').slice(0, 3).join('/');
}

/**
 * The functions with the most self time in the given windows of a CPU profile, and the
 * project's own functions by inclusive time (what they and their callees cost). V8 stamps
 * samples with the same monotonic clock `process.hrtime` reads, so windows measured by the
 * benchmark process select the samples the profiled hub took meanwhile.
 */
export function summariseProfile(
  path: string,
  windows: readonly ProfileWindow[],
  root: string,
  options: { top?: number; under?: readonly string[] } = {},
): ProfileSummary {
  const top = options.top ?? 15;
  // The hub runs from its esbuild bundle (names kept), or from source through tsx.
  const under = options.under ?? ['hub/src/', 'hub/dist/'];
  const ours = (file: string | undefined) => !!file && under.some((u) => file.startsWith(u));
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const parent = new Map<number, number>();
  const files = new Map<number, string>();
  const frames = new Map<number, string>();
  for (const n of profile.nodes) {
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url;
    const name = functionName || '(anonymous)';
    frames.set(n.id, file ? `${name} (${file}:${lineNumber + 1})` : name);
    files.set(n.id, file);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (!windows.some((w) => t >= w.fromUs && t <= w.toUs)) continue;
    // A sample stands for the time since the previous one.
    const id = profile.samples[i]!;
    const frame = frames.get(id) ?? '?';
    self.set(frame, (self.get(frame) ?? 0) + delta);
    const area = areaOf(files.get(id) ?? '', frame);
    areas.set(area, (areas.get(area) ?? 0) + delta);
    total += delta;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = frames.get(at)!;
      if (!ours(files.get(at)) || seen.has(f)) continue;
      seen.add(f);
      inclusive.set(f, (inclusive.get(f) ?? 0) + delta);
    }
  }
  const rank = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([frame, us]) => ({ frame, ms: Math.round(us / 1000), percent: total ? (100 * us) / total : 0 }));
  return { self: rank(self), inclusive: rank(inclusive), areas: rank(areas) };
}

/** A summary as indented lines: self time by area, the top functions, and the hub's own by total time. */
export function formatProfileSummary(when: string, p: ProfileSummary): string[] {
  const top = (xs: SelfTime[]) =>
    xs.map((x) => `    ${x.ms.toString().padStart(6)} ms ${x.percent.toFixed(1).padStart(5)} %  ${x.frame}`);
  return [
    `  self time by area ${when}:`,
    ...top(p.areas),
    `  top self time ${when}:`,
    ...top(p.self),
    `  hub/src functions by total time (with callees) ${when}:`,
    ...top(p.inclusive),
  ];
}
