import { FlotillaError } from '@flotilla/shared';

/** A CLI failure: one line for the user, and the exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export interface HubClient {
  json<T>(method: string, path: string, body?: unknown): Promise<T>;
  bytes(method: string, path: string, body?: Uint8Array): Promise<Uint8Array>;
}

/** Talks to the hub's admin API, turning transport and auth failures into clear one-liners. */
export function createHubClient(hubUrl: string, token: string | undefined, actor?: string): HubClient {
  const base = hubUrl.replace(/\/+$/, '');
  const call = async (method: string, path: string, body?: Uint8Array | string, type?: string) => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(actor ? { 'x-flotilla-actor': actor } : {}),
          ...(type ? { 'content-type': type } : {}),
        },
        ...(body !== undefined ? { body } : {}),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the hub at ${base}: ${cause?.code ?? cause?.message ?? String(err)}`);
    }
    if (res.status === 401) {
      throw new CliError(
        token
          ? `the hub at ${base} refused the admin token (check FLOTILLA_TOKEN)`
          : `the hub at ${base} needs an admin token: set FLOTILLA_TOKEN`,
      );
    }
    if (!res.ok) {
      const text = await res.text();
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // not JSON: show the text
      }
      throw new CliError(message || `${method} ${path}: HTTP ${res.status}`);
    }
    return res;
  };
  return {
    async json<T>(method: string, path: string, body?: unknown) {
      const res = await call(
        method,
        path,
        body === undefined ? undefined : JSON.stringify(body),
        'application/json',
      );
      return (await res.json()) as T;
    },
    async bytes(method: string, path: string, body?: Uint8Array) {
      const res = await call(method, path, body, body ? 'application/octet-stream' : undefined);
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}

export function isFlotillaError(err: unknown): err is FlotillaError {
  return err instanceof FlotillaError;
}
