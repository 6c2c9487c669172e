import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * A refusal from the API server: its HTTP status in `code` (as client-node's ApiException, so
 * callers that read `code` keep working) and the body it sent (a Status object, mostly).
 */
export class KubeApiError extends Error {
  readonly code: number;
  readonly body: unknown;
  constructor(code: number, body: unknown, what: string) {
    const message = (body as { message?: unknown } | null)?.message;
    const detail =
      typeof message === 'string' && message
        ? `${message} (HTTP ${code})`
        : `HTTP ${code}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`;
    super(`${what}: ${detail}`);
    this.name = 'KubeApiError';
    this.code = code;
    this.body = body;
  }
}

export interface KubeRequest {
  query?: Record<string, string | number | boolean | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  /** Default `application/json` when there is a body. */
  contentType?: string;
}

/** A running watch stream; abort() ends it (its `onEnd` is then called). */
export interface KubeWatch {
  abort(): void;
}

/**
 * The few raw API calls the agent makes, over node's own http(s). client-node's KubeConfig does
 * what is hard (kubeconfig files, in-cluster service accounts, TLS, exec and OIDC credential
 * plugins, proxies: `applyToHTTPSOptions` before every request, as its generated clients do);
 * its generated object API is left out: it loads every Kubernetes model (the bulk of the agent's
 * memory) and drops the fields of objects it does not know (custom resources, new fields).
 * Bodies go and come back as plain JSON.
 */
export interface KubeClient {
  /** The current context's namespace, `default` without one (where namespaced objects without a namespace go). */
  readonly defaultNamespace: string;
  request<T = unknown>(method: string, path: string, options?: KubeRequest): Promise<T>;
  /**
   * A watch stream on `path` (`watch=true` is added): `onEvent` for each event line, `onEnd`
   * once when the stream ends for whatever reason (undefined when it simply closed).
   */
  watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (type: string, object: unknown) => void,
    onEnd: (err: unknown) => void,
  ): Promise<KubeWatch>;
}

export function createKubeClient(kubeConfig: KubeConfig): KubeClient {
  const context = kubeConfig.currentContext ? kubeConfig.getContextObject(kubeConfig.currentContext) : null;

  async function open(
    method: string,
    path: string,
    query: KubeRequest['query'],
    headers: Record<string, string>,
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('No currently active cluster');
    const url = new URL(cluster.server + path);
    for (const [key, value] of Object.entries(query ?? {}))
      if (value !== undefined) url.searchParams.set(key, String(value));
    const options: https.RequestOptions = {
      method,
      headers: { Accept: 'application/json, */*;q=0.8', ...headers },
    };
    // Credentials (refreshed by exec plugins as they expire), TLS material and the agent.
    await kubeConfig.applyToHTTPSOptions(options);
    return { url, options, transport: url.protocol === 'https:' ? https : http };
  }

  return {
    defaultNamespace: context?.namespace || 'default',

    async request<T>(method: string, path: string, options: KubeRequest = {}): Promise<T> {
      const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
      const {
        url,
        options: req,
        transport,
      } = await open(
        method,
        path,
        options.query,
        payload === undefined ? {} : { 'Content-Type': options.contentType ?? 'application/json' },
      );
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const r = transport.request(url, req, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        });
        r.on('error', reject);
        r.end(payload);
      });
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text
      }
      if (status < 200 || status > 299) throw new KubeApiError(status, body, `${method} ${path}`);
      return body as T;
    },

    async watch(path, query, onEvent, onEnd) {
      let ended = false;
      let request: http.ClientRequest | undefined;
      const end = (err: unknown) => {
        if (ended) return;
        ended = true;
        request?.destroy();
        onEnd(err);
      };
      try {
        const { url, options, transport } = await open('GET', path, { ...query, watch: true }, {});
        request = transport.request(url, options, (res) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let body: unknown = text;
              try {
                body = JSON.parse(text);
              } catch {
                // plain text
              }
              end(new KubeApiError(res.statusCode ?? 0, body, `watch ${path}`));
            });
            res.on('error', end);
            return;
          }
          const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
          lines.on('line', (line) => {
            let event: { type?: unknown; object?: unknown };
            try {
              event = JSON.parse(line);
            } catch {
              return; // a torn line: the stream ends and the caller relists
            }
            onEvent(String(event.type), event.object);
          });
          lines.on('error', end);
          lines.on('close', () => end(undefined));
          res.on('error', end);
        });
        // A silent peer (a node gone) is noticed by TCP keepalive, as client-node's Watch does.
        request.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
        request.on('error', end);
        request.end();
      } catch (err) {
        end(err);
      }
      return { abort: () => end(undefined) };
    },
  };
}
