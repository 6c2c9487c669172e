import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, errorMessage, InvalidError, type Logger } from '@flotilla/shared';
import type { AgentHealth } from './agent-health.js';
import { parseListenAddress } from './listen-address.js';

export { parseListenAddress };

export interface HealthServer {
  /** Where it listens, `HOST:PORT` with the port it got. */
  address: string;
  close(): Promise<void>;
}

/** Text for /healthz: one line per loop, so `curl` tells which one is stuck. */
function livenessText(health: AgentHealth): { ok: boolean; body: string } {
  const { ok, loops } = health.liveness();
  const lines = loops.map((l) => {
    const part = l.part ? ` (${l.part})` : '';
    return l.state === 'idle'
      ? `${l.loop}: idle`
      : `${l.loop}: ${l.state}${part}, no progress for ${(l.silentMs / 1000).toFixed(1)} s of ${l.boundMs / 1000} s`;
  });
  return { ok, body: `${ok ? 'ok' : 'stalled'}\n${lines.join('\n')}\n` };
}

/**
 * The agent's HTTP endpoints for the kubelet and Prometheus: `/healthz` (200 unless a loop is
 * stalled), `/readyz` (200 once the first bundle is applied) and `/metrics`. GET and HEAD only;
 * nothing here can change the agent, and nothing it serves is secret.
 */
export async function startHealthServer(options: {
  address: string;
  health: AgentHealth;
  logger?: Logger;
}): Promise<HealthServer> {
  const { host, port } = parseListenAddress(options.address);
  const log = options.logger ?? createLogger({ name: 'agent', level: 'silent' });
  const { health } = options;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(405, 'method not allowed\n');
    }
    if (path === '/healthz') {
      const { ok, body } = livenessText(health);
      return send(ok ? 200 : 503, body);
    }
    if (path === '/readyz') {
      const { ok, reason } = health.readiness();
      return send(ok ? 200 : 503, `${ok ? 'ready' : `not ready: ${reason}`}\n`);
    }
    if (path === '/metrics') {
      health.metrics.render().then(
        (text) => send(200, text, health.metrics.contentType),
        (err) => {
          log.error({ err: errorMessage(err) }, 'metrics: render failed');
          send(500, 'metrics render failed\n');
        },
      );
      return;
    }
    send(404, 'not found: try /healthz, /readyz or /metrics\n');
  });
  // Probes and scrapes are small and short: a stuck client must not hold a socket for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new InvalidError('--metrics-addr', `cannot listen on ${options.address}: ${errorMessage(err)}`)),
    );
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  log.info({ address }, 'health and metrics endpoints listening (/healthz, /readyz, /metrics)');
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
