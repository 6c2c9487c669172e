import { InvalidError } from '@flotilla/shared';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `30s`, `10m`, `24h`, `1h30m` (or a plain number of milliseconds) into milliseconds. */
export function parseDuration(value: string, field = 'duration'): number {
  if (/^\d+$/.test(value)) return Number(value);
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value)
    throw new InvalidError(field, `"${value}" is not a duration such as 30s, 10m or 24h`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2]!] ?? 0), 0);
}
