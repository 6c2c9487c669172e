import { readFileSync } from 'node:fs';
import { errorMessage, FlotillaError } from '@flotilla/shared';

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

/**
 * The bearer token of a `flotilla login`, read (and refreshed when expired) on the first call;
 * `token()` throws a CliError telling the user to log in again when it cannot.
 */
export interface LoginToken {
  token(): Promise<string>;
  /** What a refusal tells the user to do; default: run `flotilla login` again. */
  whenRefused?: string;
}

/** What one admin API call answered. */
interface HubResponse {
  status: number;
  body: Buffer;
}

/** TLS failures that mean "this hub's certificate is not one we trust", not "unreachable". */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Talks to the hub's admin API, turning transport and auth failures into clear one-liners.
 * An https:// hub must present a certificate that chains to `caFile` (the ca.pem of the hub's
 * data dir) or to a CA the system trusts.
 */
export function createHubClient(
  hubUrl: string,
  auth: string | LoginToken | undefined,
  caFile?: string,
): HubClient {
  const base = hubUrl.replace(/\/+$/, '');
  let bearer: Promise<string> | undefined;
  const tokenOf = async () => {
    if (typeof auth === 'string' || auth === undefined) return auth;
    bearer ??= auth.token();
    return bearer;
  };
  let ca: string | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new CliError(`FLOTILLA_CA_FILE ${caFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  const send = async (method: string, path: string, body?: Uint8Array | string, type?: string) => {
    const url = new URL(`${base}${path}`);
    // Loaded on first use, and only the one the URL needs: node:http alone costs a CLI that
    // prints its help ~20 ms of start-up, node:https more.
    const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    const token = await tokenOf();
    return new Promise<HubResponse>((resolveResponse, reject) => {
      const headers: Record<string, string> = {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(type ? { 'content-type': type } : {}),
      };
      const req = request(url, { method, headers, ...(ca && url.protocol === 'https:' ? { ca } : {}) });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolveResponse({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  };
  const call = async (method: string, path: string, body?: Uint8Array | string, type?: string) => {
    let res: HubResponse;
    try {
      res = await send(method, path, body, type);
    } catch (err) {
      if (err instanceof CliError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code && UNTRUSTED.has(code))
        throw new CliError(
          `the hub at ${base} presented a certificate this CLI does not trust (${code}): ` +
            `set FLOTILLA_CA_FILE to tls/ca.pem in the hub's data dir`,
        );
      throw new CliError(`cannot reach the hub at ${base}: ${code ?? errorMessage(err)}`);
    }
    const errorText = () => {
      const text = res.body.toString('utf8');
      try {
        return (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        return text; // not JSON: show the text
      }
    };
    if (res.status === 401) {
      // The hub says why (an OIDC token: expired, wrong audience, a group without a role).
      const why = errorText() || 'wrong, expired or revoked';
      throw new CliError(
        auth === undefined
          ? `the hub at ${base} needs a token: set FLOTILLA_TOKEN or run \`flotilla login\``
          : typeof auth === 'string'
            ? `the hub at ${base} refused the token: ${why} (check FLOTILLA_TOKEN)`
            : `the hub at ${base} refused your login: ${why}${auth.whenRefused ?? '; run `flotilla login` again'}`,
      );
    }
    if (res.status < 200 || res.status > 299)
      throw new CliError(errorText() || `${method} ${path}: HTTP ${res.status}`);
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
      return JSON.parse(res.body.toString('utf8')) as T;
    },
    async bytes(method: string, path: string, body?: Uint8Array) {
      const res = await call(method, path, body, body ? 'application/octet-stream' : undefined);
      return new Uint8Array(res.body);
    },
  };
}

export function isFlotillaError(err: unknown): err is FlotillaError {
  return err instanceof FlotillaError;
}
