import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';
import { type ManagedProcess, startProcess } from './process.js';

const run = promisify(execFile);

/** A private PostgreSQL server of a test's own, on a free port, that it may stop and start. */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth). */
  url: string;
  process: ManagedProcess;
  stop(): Promise<void>;
  /** Starts it again on the same port and data (after stop(), for outage tests). */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

/** The newest installed PostgreSQL's bin dir (Debian: /usr/lib/postgresql/<major>/bin). */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(base, majors[0], 'bin') : undefined;
}

/**
 * initdb into a temp dir and start `postgres` on a free port, listening on 127.0.0.1 only.
 * PostgreSQL refuses to run as root: as root, it runs as the `postgres` user (runuser).
 */
export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? Number((await run('id', ['-u', 'postgres'])).stdout.trim()) : undefined;
  const group = asRoot ? Number((await run('id', ['-g', 'postgres'])).stdout.trim()) : undefined;
  if (owner !== undefined && group !== undefined) chownSync(dir, owner, group);
  const as = (cmd: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const [initCmd, initArgs] = as(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
  ]);
  await run(initCmd, initArgs);
  const port = await freePort();
  const [pgCmd, pgArgs] = as(join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-h',
    '127.0.0.1',
    '-k',
    dir,
    '-c',
    'fsync=off',
  ]);
  const launch = () =>
    startProcess(pgCmd, pgArgs, {
      name: `postgres:${port}`,
      ready: /database system is ready to accept connections/,
      timeoutMs: 30_000,
    });
  const server: PostgresServer = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    process: await launch(),
    async stop() {
      // SIGINT is PostgreSQL's fast shutdown: it does not wait for the hub to disconnect.
      server.process.kill('SIGINT');
      await server.process.stop(10_000);
    },
    async start() {
      server.process = await launch();
    },
    async destroy() {
      server.process.kill('SIGINT');
      await server.process.stop(10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
