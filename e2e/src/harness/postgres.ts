import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
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

const hasServer = (dir: string) => existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'));

/**
 * The directory holding the PostgreSQL server binaries (`postgres`, `initdb`), found the way
 * the machine has them: `pg_config --bindir`, then `PATH` (e.g. /usr/local/bin links), then
 * Debian's `/usr/lib/postgresql/<major>/bin` (newest major), which is not on `PATH`.
 */
export function postgresBinDir(): string | undefined {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (dir && hasServer(dir)) return dir;
  } catch {
    // no pg_config (it comes with libpq-dev): look elsewhere
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && hasServer(dir)) return dir;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base)
    .filter((v) => hasServer(join(base, v, 'bin')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(base, majors[0], 'bin') : undefined;
}

/**
 * initdb into a temp dir and start `postgres` on a free port, listening on 127.0.0.1 only.
 * PostgreSQL refuses to run as root: as root, it runs as the `postgres` user (runuser), which
 * the Debian package creates.
 */
export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin)
    throw new Error(
      'PostgreSQL: no server binaries (postgres, initdb) found via pg_config, PATH or /usr/lib/postgresql; ' +
        'install the Debian package postgresql (.ci/run does)',
    );
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
