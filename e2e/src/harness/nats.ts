import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { type ManagedProcess, startProcess } from './process.js';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

export interface NatsServerOptions {
  /** Extra server configuration (e.g. operator mode from `flotilla hub nats-config`). */
  config?: string;
  /** Reuse a store dir, e.g. to restart with the same JetStream state. */
  storeDir?: string;
  port?: number;
  /** Server max_payload; 8 MiB by default. */
  maxPayload?: number;
}

/** A real nats-server with JetStream on a free port and a temp store dir. */
export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  process: ManagedProcess;
  stop(): Promise<void>;
  /** Stops and starts it again on the same port and store (for outage tests). */
  restart(): Promise<void>;
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-nats-'));
  const storeDir = options.storeDir ?? join(dir, 'js');
  const confPath = join(dir, 'nats.conf');
  writeFileSync(
    confPath,
    [
      `listen: 127.0.0.1:${port}`,
      `max_payload: ${options.maxPayload ?? 8 * 1024 * 1024}`,
      `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
      options.config ?? '',
    ].join('\n'),
  );
  const launch = () =>
    startProcess(NATS_SERVER_BIN, ['-c', confPath], {
      name: `nats:${port}`,
      ready: /Server is ready/,
      timeoutMs: 15_000,
    });
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    process: await launch(),
    async stop() {
      await server.process.stop();
      if (!options.storeDir) rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await server.process.stop();
      server.process = await launch();
    },
  };
  return server;
}
