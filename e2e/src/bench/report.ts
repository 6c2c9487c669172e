import { readdirSync, readFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';

/** What every benchmark prints first: the machine its figures come from. */
export function machineLine(): string {
  const cpu = cpus();
  return `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM (${(freemem() / 2 ** 30).toFixed(1)} free), Node ${process.version}, ${process.platform}`;
}

/** Median, p90, min and max of a set of durations in milliseconds. */
export function msStats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `median ${q(0.5).toFixed(0)} ms, p90 ${q(0.9).toFixed(0)} ms, min ${s[0]!.toFixed(0)} ms, max ${s.at(-1)!.toFixed(0)} ms`;
}

/** p50, p90, p99 and max of a set of samples (nearest rank), as `--json` prints them. */
export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function percentiles(xs: readonly number[]): Percentiles {
  if (xs.length === 0) return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => Math.round(s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!);
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: Math.round(s.at(-1)!) };
}

/** `p50 … ms, p90 … ms, p99 … ms, max … ms`. */
export function formatPercentiles(p: Percentiles, unit = 'ms'): string {
  return `p50 ${p.p50} ${unit}, p90 ${p.p90} ${unit}, p99 ${p.p99} ${unit}, max ${p.max} ${unit}`;
}

/** Resident memory and CPU time (user + system, in clock ticks of 10 ms) of a process, from /proc. */
export function procStats(pid: number): { rssKiB: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { rssKiB, cpuTicks: Number(stat[11]) + Number(stat[12]) };
}

/**
 * CPU time (clock ticks of 10 ms) of a process and its descendants, from /proc: a server
 * that forks a process per connection (PostgreSQL's backends each start a session of their own,
 * so the process group does not hold them).
 */
export function treeCpuTicks(root: number): number {
  const procs = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // Its own time and that of its children that have exited (a backend whose connection closed).
      const ticks = Number(stat[11]) + Number(stat[12]) + Number(stat[13]) + Number(stat[14]);
      procs.set(Number(entry), { ppid: Number(stat[1]), ticks });
    } catch {
      // gone meanwhile
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = procs.get(p)?.ppid)
      if (p === root) return true;
    return false;
  };
  let ticks = 0;
  for (const [pid, p] of procs) if (inTree(pid)) ticks += p.ticks;
  return ticks;
}

/** Runs `fn` over the items with at most `width` at a time. */
export async function lanes<T>(
  width: number,
  items: readonly T[],
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}
