import { InvalidError } from './errors.js';

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/**
 * When an agent may apply a new generation (as Argo CD's sync windows). Outside every window
 * of its bundle's policy the agent holds a new bundle, as the manual sync policy does; drift
 * healing of the applied bundle goes on regardless. Both sides evaluate windows with this code.
 */
export interface MaintenanceWindow {
  /** Days the window opens on; every day when absent. */
  days?: Weekday[];
  /**
   * `HH:MM-HH:MM` in the window's time zone; all day when absent. A range that crosses
   * midnight (`22:00-04:00`) opens on a listed day and runs into the next.
   */
  hours?: string;
  /** An IANA time zone; default UTC. */
  timeZone?: string;
}

const HOURS = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$/;

/** Validates a window as written in flotilla.yaml; an InvalidError names the field at fault. */
export function parseMaintenanceWindow(raw: Record<string, unknown>): MaintenanceWindow {
  const out: MaintenanceWindow = {};
  for (const key of Object.keys(raw))
    if (key !== 'days' && key !== 'hours' && key !== 'timeZone')
      throw new InvalidError(key, 'is not a known field');
  if (raw.days !== undefined) {
    const days = raw.days;
    if (!Array.isArray(days) || days.length === 0)
      throw new InvalidError('days', `must be a non-empty list of ${WEEKDAYS.join(', ')}`);
    out.days = days.map((d) => {
      const day = typeof d === 'string' ? d.slice(0, 3).toLowerCase() : '';
      if (!(WEEKDAYS as readonly string[]).includes(day) || (d as string).length > 9)
        throw new InvalidError('days', `${JSON.stringify(d)} is not a day (${WEEKDAYS.join(', ')})`);
      return day as Weekday;
    });
  }
  if (raw.hours !== undefined) {
    const m = typeof raw.hours === 'string' ? HOURS.exec(raw.hours) : null;
    if (!m || (m[3] === '24' && m[4] !== '00'))
      throw new InvalidError('hours', 'must be HH:MM-HH:MM, e.g. 22:00-04:00');
    if (m[1] === m[3] && m[2] === m[4])
      throw new InvalidError('hours', 'must not start and end at the same time');
    out.hours = raw.hours as string;
  }
  if (raw.timeZone !== undefined) {
    if (typeof raw.timeZone !== 'string') throw new InvalidError('timeZone', 'must be an IANA time zone');
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: raw.timeZone });
    } catch {
      throw new InvalidError('timeZone', `${raw.timeZone} is not a known IANA time zone`);
    }
    out.timeZone = raw.timeZone;
  }
  return out;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function local(at: Date, timeZone: string): { day: number; minute: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return {
    day: WEEKDAYS.indexOf(String(parts.weekday).toLowerCase() as Weekday),
    minute: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

function isOpen(w: MaintenanceWindow, at: Date): boolean {
  const { day, minute } = local(at, w.timeZone ?? 'UTC');
  const onDay = (d: number) => !w.days || w.days.includes(WEEKDAYS[(d + 7) % 7]!);
  if (!w.hours) return onDay(day);
  const m = HOURS.exec(w.hours)!;
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (start < end) return onDay(day) && minute >= start && minute < end;
  return (onDay(day) && minute >= start) || (onDay(day - 1) && minute < end);
}

/** Whether any window is open at `now` and, if none is, when the next one opens. No windows: always open. */
export function windowState(
  windows: readonly MaintenanceWindow[] | undefined,
  now: Date,
): { open: true } | { open: false; opensAt: Date } {
  if (!windows || windows.length === 0) return { open: true };
  if (windows.some((w) => isOpen(w, now))) return { open: true };
  // Minute steps over real instants: time zone offsets and DST changes need no arithmetic of our own.
  const start = Math.floor(now.getTime() / 60_000) * 60_000 + 60_000;
  for (let t = start; t <= start + 8 * 86_400_000; t += 60_000) {
    const at = new Date(t);
    if (windows.some((w) => isOpen(w, at))) return { open: false, opensAt: at };
  }
  // Unreachable for valid windows (each opens at least once a week).
  return { open: false, opensAt: new Date(start + 8 * 86_400_000) };
}
