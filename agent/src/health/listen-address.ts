import { InvalidError } from '@flotilla/shared/errors';

/** `HOST:PORT`, `:PORT` (every interface) or `[v6]:PORT`, as `--metrics-addr` takes it. */
export function parseListenAddress(value: string, flag = '--metrics-addr'): { host?: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new InvalidError(flag, `"${value}" is not HOST:PORT or :PORT`);
  }
  const host = m[1] ?? m[2];
  return { ...(host ? { host } : {}), port };
}
