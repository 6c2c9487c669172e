import type { IncomingMessage, ServerResponse } from 'node:http';
import { FlotillaError, InvalidError } from '@flotilla/shared';
import type { Identity, Permission } from '../access/roles.js';

/** What a route handler gets: the parsed request, with body readers that enforce a size limit. */
export interface ApiRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The caller's address, as the socket sees it (a proxy in front shows as itself). */
  remoteAddress: string | undefined;
  /** Who is calling, as authenticated, for the audit log (`admin`, `token:NAME`); `anonymous` on a public route. */
  actor: string;
  /** The authenticated caller; undefined on a public route. */
  identity: Identity | undefined;
  /**
   * Checks a permission the route's declaration could not (one that depends on what the
   * handler finds): throws an audited 403 naming it.
   */
  authorize(permission: Permission, environment?: string): Promise<void>;
  json<T = Record<string, unknown>>(): Promise<T>;
  bytes(): Promise<Uint8Array>;
}

/** A handler's answer: JSON (default) or raw bytes (with headers of its own, e.g. for a page). */
export type ApiResponse =
  | { status?: number; json: unknown }
  | {
      status?: number;
      bytes: Uint8Array;
      contentType: string;
      filename?: string;
      headers?: Record<string, string>;
    };

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** `/api/v1/clusters/:name` style. */
  path: string;
  /**
   * What the caller must hold, checked before `handle` (a refusal is an audited 403 naming
   * it); `public` for the few routes that authenticate otherwise (dashboard login, webhooks).
   */
  permission: Permission | 'public';
  /**
   * The environments the call acts on (the promotion's target, a cluster's environment): the
   * permission must be held on each. Without it, on at least one environment.
   */
  environments?(req: ApiRequest): Promise<string[]>;
  /** The largest body this route reads; default the server's. */
  maxBodyBytes?: number;
  handle(req: ApiRequest): Promise<ApiResponse>;
}

/** Matches a route pattern against a path, returning its params. */
export function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const p = pattern.split('/');
  const s = path.split('/');
  if (p.length !== s.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    const seg = p[i]!;
    if (seg.startsWith(':')) params[seg.slice(1)] = decodeURIComponent(s[i]!);
    else if (seg !== s[i]) return undefined;
  }
  return params;
}

export async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new FlotillaError('invalid', `request body: larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

export function parseJson<T>(bytes: Uint8Array): T {
  if (bytes.length === 0) return {} as T;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (err) {
    throw new InvalidError('request body', 'is not valid JSON', { cause: err });
  }
}

export function send(res: ServerResponse, response: ApiResponse): void {
  if ('json' in response) {
    const body = JSON.stringify(response.json);
    res.writeHead(response.status ?? 200, { 'content-type': 'application/json' });
    res.end(body);
  } else {
    res.writeHead(response.status ?? 200, {
      ...response.headers,
      'content-type': response.contentType,
      ...(response.filename ? { 'content-disposition': `attachment; filename="${response.filename}"` } : {}),
    });
    res.end(Buffer.from(response.bytes));
  }
}
