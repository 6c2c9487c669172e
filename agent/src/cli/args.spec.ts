import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../test-support.js';
import { parseCliArgs } from './args.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

test('parseCliArgs turns flags into a checked command, and bad ones into a usage error naming the flag', () => {
  const ok = parseCliArgs(['run', '--state-dir', '/s', '--heartbeat', '5', '--nats-url', 'nats://a'], {});
  assert.equal(ok.kind, 'command');
  assert.deepEqual(ok.kind === 'command' && ok.command, {
    name: 'run',
    common: { stateDir: '/s', inCluster: false },
    heartbeatMs: 5000,
    healResetMs: 60_000,
    windowCheckMs: 30_000,
    stallTimeoutMs: 300_000,
    natsUrls: ['nats://a'],
  });
  assert.deepEqual(parseCliArgs(['run', '--heartbeat', '0'], {}), {
    kind: 'invalid',
    command: 'run',
    message: '--heartbeat: "0" is not a positive number',
  });
  const unknown = parseCliArgs(['join', '--hubb', 'x'], {});
  assert.equal(unknown.kind, 'invalid');
  assert.match(unknown.kind === 'invalid' ? unknown.message : '', /--hubb/);
  assert.deepEqual(parseCliArgs(['status', 'export'], { stateDir: '/e' }), {
    kind: 'invalid',
    command: 'status',
    message: '-o: is required',
  });
  const help = parseCliArgs(['import', '--help'], {});
  assert.equal(help.kind === 'usage' && help.exitCode, 0);
  assert.equal(
    parseCliArgs([], {}).kind === 'usage' && (parseCliArgs([], {}) as { exitCode: number }).exitCode,
    2,
  );
  assert.deepEqual(parseCliArgs(['version'], {}), {
    kind: 'command',
    command: { name: 'version' },
    logFormat: 'json',
  });
});

/**
 * A loader hook (registered with --import, before the CLI runs) that writes every module URL the
 * process resolves to the file named by LOADED_MODULES_FILE. It sees each ESM import, including
 * the first import of a CommonJS package (nats, @grpc/grpc-js, pino), not the require()s inside one.
 */
const HOOKS = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.LOADED_MODULES_FILE, resolved.url + '\\n');
  return resolved;
}`;
const REGISTER = `data:text/javascript,${encodeURIComponent(
  `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`,
)}`;

/** Runs the CLI from its sources (tsx) and returns its exit code and the modules it loaded. */
async function loadedBy(t: Parameters<typeof tempDir>[0], args: string[]) {
  const file = join(tempDir(t), 'loaded.txt');
  const { code } = await run(process.execPath, ['--import', 'tsx', '--import', REGISTER, MAIN, ...args], {
    env: { ...process.env, LOADED_MODULES_FILE: file },
  }).then(
    () => ({ code: 0 }),
    (err: { code: number }) => ({ code: err.code }),
  );
  return { code, modules: readFileSync(file, 'utf8').split('\n').filter(Boolean) };
}

/** What the agent's run path loads and --help, version and a usage error must not. */
const RUN_PATH = [
  /\/node_modules\/nats\//,
  /\/node_modules\/@grpc\/grpc-js\//,
  /\/node_modules\/@kubernetes\/client-node\//,
  /\/node_modules\/pino\//,
  /\/node_modules\/prom-client\//,
  /\/agent\/src\/(run|agent|pull|state|kube-client|status-client|join|air-gap)\.ts$/,
  /\/agent\/src\/cli\/execute\.ts$/,
  /\/shared\/src\/index\.ts$/,
];

test('flotilla-agent --help, version and a bad argument load none of the run path (NATS, gRPC, Kubernetes client, pino)', async (t) => {
  for (const [args, exitCode] of [
    [['--help'], 0],
    [['version'], 0],
    [['run', '--stall-timeout', '5'], 2],
  ] as const) {
    const { code, modules } = await loadedBy(t, [...args]);
    assert.equal(code, exitCode, args.join(' '));
    assert.ok(
      modules.some((m) => m.endsWith('/agent/src/cli/args.ts')),
      'the hook sees the CLI modules',
    );
    const heavy = modules.filter((m) => RUN_PATH.some((r) => r.test(m)));
    assert.deepEqual(heavy, [], `${args.join(' ')} loaded run-path modules`);
  }
  // The check can fail: a command that gets past its arguments loads the run path.
  const { code, modules } = await loadedBy(t, [
    'run',
    '--state-dir',
    '/nonexistent-flotilla',
    '--kubeconfig',
    '/dev/null',
  ]);
  assert.equal(code, 1);
  for (const pattern of [
    /\/node_modules\/nats\//,
    /\/node_modules\/@grpc\/grpc-js\//,
    /\/agent\/src\/run\.ts$/,
  ])
    assert.ok(
      modules.some((m) => pattern.test(m)),
      `run loads ${pattern}`,
    );
});
