#!/usr/bin/env node
// Runs first in `npm test` and `npm run demo`, so that both work as written on a fresh clone:
// installs the npm dependencies (npm ci) when node_modules is missing or does not hold what
// package-lock.json locks, saying so, and stops with a clear message when a program from outside
// npm that the command needs is missing. Plain node, no dependencies: nothing is installed yet.
//
//   node scripts/preflight.mjs test|demo
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const purpose = process.argv[2] === 'demo' ? 'demo' : 'test';
const say = (text) => process.stderr.write(`preflight: ${text}\n`);

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 6)) {
  say(`Node ${process.versions.node} is too old: Flotilla needs Node 20.6 or newer`);
  process.exit(1);
}

/** Why node_modules needs (re)installing, or undefined when it holds what the lockfile locks. */
function installReason() {
  const installed = join(ROOT, 'node_modules', '.package-lock.json');
  if (!existsSync(join(ROOT, 'node_modules'))) return 'node_modules is missing (a fresh clone)';
  if (!existsSync(installed) || !existsSync(join(ROOT, 'node_modules', '.bin', 'tsx')))
    return 'node_modules is incomplete';
  // npm records what it installed in node_modules/.package-lock.json: a package locked at
  // another version (after a pull or a branch switch) means the install is stale. Optional
  // packages (other platforms' binaries) are left out: npm installs only those that fit.
  const locked = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')).packages ?? {};
  const have = JSON.parse(readFileSync(installed, 'utf8')).packages ?? {};
  const stale = Object.entries(locked).find(
    ([path, p]) =>
      path.startsWith('node_modules/') && !p.optional && !p.link && have[path]?.version !== p.version,
  );
  if (stale) return `${stale[0]} is not at the version package-lock.json locks (${stale[1].version})`;
  return undefined;
}

const reason = installReason();
if (reason) {
  say(`${reason}: running npm ci to install the locked npm dependencies (a minute or two)…`);
  const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit' });
  if (npm.status !== 0) {
    say(`npm ci failed (exit ${npm.status ?? npm.signal ?? npm.error?.message}); see its output above`);
    process.exit(1);
  }
  say('npm dependencies installed');
}

const onPath = (name) =>
  (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, name)));
const natsServer = '/usr/sbin/nats-server';
const missing = [];
if (!existsSync(natsServer)) missing.push(`${natsServer} (Debian package nats-server)`);
if (!onPath('git')) missing.push('git (Debian package git)');
if (!onPath('unzip'))
  missing.push('unzip (Debian package unzip: unpacks the helm binary that renders charts)');
if (purpose === 'test') {
  const pg = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const pgDirs = [pg.stdout?.trim(), ...(process.env.PATH ?? '').split(delimiter)].filter(Boolean);
  const hasPostgres =
    pgDirs.some((d) => existsSync(join(d, 'postgres')) && existsSync(join(d, 'initdb'))) ||
    (existsSync('/usr/lib/postgresql') &&
      spawnSync('sh', ['-c', 'ls /usr/lib/postgresql/*/bin/postgres'], { stdio: 'ignore' }).status === 0);
  if (!hasPostgres)
    missing.push('the PostgreSQL server binaries postgres and initdb (Debian package postgresql)');
  if (!onPath('kubectl')) missing.push('kubectl (the tests check the Kubernetes API test server against it)');
  if (!existsSync('/usr/bin/docker-registry'))
    missing.push(
      '/usr/bin/docker-registry (Debian package docker-registry: the chart tests run an OCI registry)',
    );
}
if (missing.length > 0) {
  say(`npm ${purpose === 'demo' ? 'run demo' : 'test'} needs programs that are not installed:`);
  for (const m of missing) say(`  - ${m}`);
  say('.ci/run installs them on Debian (as root)');
  process.exit(1);
}
