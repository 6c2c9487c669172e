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
  /** JetStream domain (needed for JetStream API requests that arrive over a leaf node). */
  jsDomain?: string;
  /** Listen for leaf node connections on a free port. */
  leafnodes?: boolean;
}

/** A real nats-server with JetStream on a free port and a temp store dir. */
export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  process: ManagedProcess;
  /** `nats-leaf://127.0.0.1:PORT` when started with `leafnodes`. */
  leafUrl?: string;
  stop(): Promise<void>;
  /** Stops and starts it again on the same port and store (for outage tests). */
  restart(): Promise<void>;
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-nats-'));
  const storeDir = options.storeDir ?? join(dir, 'js');
  const confPath = join(dir, 'nats.conf');
  const leafPort = options.leafnodes ? await freePort() : undefined;
  writeFileSync(
    confPath,
    [
      `listen: 127.0.0.1:${port}`,
      `max_payload: ${options.maxPayload ?? 8 * 1024 * 1024}`,
      `jetstream { store_dir: ${JSON.stringify(storeDir)}${options.jsDomain ? `, domain: ${options.jsDomain}` : ''} }`,
      leafPort ? `leafnodes { listen: 127.0.0.1:${leafPort} }` : '',
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
    ...(leafPort ? { leafUrl: `nats-leaf://127.0.0.1:${leafPort}` } : {}),
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

/** A site's own nats-server, a leaf node of the hub's: no JetStream, no auth of its own. */
export interface LeafNatsServer {
  url: string;
  process: ManagedProcess;
  stop(): Promise<void>;
  /** Starts it again on the same port (the link coming back). */
  restart(): Promise<void>;
}

/**
 * Starts a leaf node server that connects out to `remoteUrl` with the user credentials in
 * `credentials` (a `.creds` file), as a NATS leaf node site does. Local clients connect
 * without auth and get exactly what that user may reach.
 */
export async function startLeafNatsServer(options: {
  remoteUrl: string;
  credentials: string;
}): Promise<LeafNatsServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-leaf-'));
  const confPath = join(dir, 'leaf.conf');
  writeFileSync(
    confPath,
    [
      `listen: 127.0.0.1:${port}`,
      'max_payload: 8388608',
      `leafnodes { reconnect: 1, remotes: [ { url: ${JSON.stringify(options.remoteUrl)}, credentials: ${JSON.stringify(options.credentials)} } ] }`,
    ].join('\n'),
  );
  const launch = () =>
    startProcess(NATS_SERVER_BIN, ['-c', confPath], {
      name: `nats-leaf:${port}`,
      ready: /Server is ready/,
      timeoutMs: 15_000,
    });
  const leaf: LeafNatsServer = {
    url: `nats://127.0.0.1:${port}`,
    process: await launch(),
    async stop() {
      await leaf.process.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await leaf.process.stop();
      leaf.process = await launch();
    },
  };
  return leaf;
}
