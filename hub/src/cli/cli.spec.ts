import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  eventually,
  freePort,
  type GitServer,
  type GitWorkdir,
  type ManagedProcess,
  type NatsServer,
  startGitServer,
  startNatsServer,
  startProcess,
} from '@flotilla/e2e/harness';
import {
  AgentService,
  createGrpcClient,
  Health,
  Phase,
  RegisterRequestSchema,
  type RegisterResponse,
  ReportStatusRequestSchema,
} from '@flotilla/proto';
import {
  encodeEnvelope,
  generateSigningKey,
  rawPublicKey,
  signStatusExport,
  trustedKeys,
  verifyBundle,
} from '@flotilla/shared';
import { credentials, Metadata } from '@grpc/grpc-js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/flotilla.js', import.meta.url));

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function flotilla(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** `flotilla hub start` as a process on free ports, for the hub initialised in `dir/hub`. */
async function startHubProcess(
  dir: string,
  nats: NatsServer,
  repo: string,
  extraArgs: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ process: ManagedProcess; ready: { http: string; grpc: string; caHash: string } }> {
  const readyFile = join(dir, 'ready.json');
  const hub = await startProcess(
    process.execPath,
    [
      BIN,
      'hub',
      'start',
      '--data-dir',
      join(dir, 'hub'),
      '--nats',
      nats.url,
      '--repo',
      repo,
      '--http',
      '127.0.0.1:0',
      '--grpc',
      '127.0.0.1:0',
      '--ready-file',
      readyFile,
      ...extraArgs,
    ],
    { name: 'hub', ready: /hub ready/, timeoutMs: 60_000, env: { ...process.env, ...extraEnv } },
  );
  return { process: hub, ready: JSON.parse(readFileSync(readyFile, 'utf8')) };
}

const FLEET = `environments:
  - name: dev
    path: environments/dev
pipeline: [dev]
`;
const app = (v: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config, namespace: shop}\ndata: {v: "${v}"}\n`;

describe('flotilla CLI against a running hub process', () => {
  let dir: string;
  let nats: NatsServer;
  let git: GitServer;
  let work: GitWorkdir;
  let hubProcess: ManagedProcess;
  let env: Record<string, string>;
  let ready: { http: string; grpc: string; caHash: string };
  let caHash: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-'));
    const init = await flotilla(['hub', 'init', '--data-dir', join(dir, 'hub'), '-o', 'json']);
    assert.equal(init.code, 0, init.stderr);
    const first = JSON.parse(init.stdout) as { adminToken: string; caHash: string; natsConfig: string };
    assert.match(first.adminToken, /^flt_admin_/);
    assert.match(first.caHash, /^sha256:[0-9a-f]{64}$/);
    caHash = first.caHash;
    const again = JSON.parse(
      (await flotilla(['hub', 'init', '--data-dir', join(dir, 'hub'), '-o', 'json'])).stdout,
    );
    assert.equal(again.adminToken, null, 'the admin token is printed once');
    assert.equal(again.caHash, first.caHash, 'init is idempotent');

    nats = await startNatsServer({ config: readFileSync(first.natsConfig, 'utf8') });
    git = await startGitServer({ auth: { username: 'flotilla', password: 's3cret-repo-pass' } });
    await git.createRepo('fleet', { 'flotilla.yaml': FLEET, 'environments/dev/app.yaml': app('1') });
    work = await git.clone('fleet');
    const started = await startHubProcess(
      dir,
      nats,
      `${git.url}/fleet.git`,
      ['--repo-username', 'flotilla', '--poll', '1h', '--heartbeat-window', '30s'],
      { FLOTILLA_REPO_PASSWORD: 's3cret-repo-pass' },
    );
    hubProcess = started.process;
    ready = started.ready;
    assert.equal(ready.caHash, caHash);
    env = { FLOTILLA_HUB: ready.http, FLOTILLA_TOKEN: first.adminToken };
  });

  after(async () => {
    await hubProcess?.stop();
    await git?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('cluster add -o json prints name, token and the exact join command', async () => {
    const res = await flotilla(
      ['cluster', 'add', 'dev-1', '--env', 'dev', '--label', 'tier=web', '-o', 'json'],
      env,
    );
    assert.equal(res.code, 0, res.stderr);
    const added = JSON.parse(res.stdout);
    assert.deepEqual(Object.keys(added).sort(), ['joinCommand', 'name', 'token']);
    assert.equal(
      added.joinCommand,
      `npx flotilla-agent join --hub ${ready.grpc} --token ${added.token} --ca-hash ${caHash}`,
    );
  });

  test('cluster list and fleet status -o json have the contract keys', async () => {
    const list = JSON.parse((await flotilla(['cluster', 'list', '-o', 'json'], env)).stdout);
    assert.deepEqual(Object.keys(list), ['clusters']);
    assert.deepEqual(Object.keys(list.clusters[0]).sort(), [
      'connected',
      'createdAt',
      'environment',
      'labels',
      'lastSeen',
      'name',
    ]);
    assert.deepEqual(list.clusters[0].labels, { tier: 'web' });
    const status = JSON.parse((await flotilla(['fleet', 'status', '-o', 'json'], env)).stdout);
    const keys = [
      'name',
      'environment',
      'labels',
      'revision',
      'generation',
      'phase',
      'sync',
      'health',
      'drifted',
      'error',
      'connected',
      'lastSeen',
    ];
    for (const k of keys) assert.ok(k in status.clusters[0], `fleet status lacks ${k}`);
    assert.equal(status.clusters[0].connected, false);
    assert.equal(status.clusters[0].sync, 'OutOfSync');
    const drift = JSON.parse((await flotilla(['fleet', 'drift', '-o', 'json'], env)).stdout);
    assert.deepEqual(drift, { drift: [] });
    const human = await flotilla(['fleet', 'status'], env);
    assert.match(human.stdout, /^CLUSTER\s+ENV\s+REVISION/);
  });

  test('cluster show prints one cluster and its objects; an unknown cluster is a clear error', async () => {
    const name = JSON.parse((await flotilla(['cluster', 'list', '-o', 'json'], env)).stdout).clusters[0].name;
    const shown = JSON.parse((await flotilla(['cluster', 'show', name, '-o', 'json'], env)).stdout);
    assert.deepEqual(Object.keys(shown), ['cluster', 'resources']);
    assert.equal(shown.cluster.name, name);
    assert.deepEqual(shown.resources, []);
    const human = await flotilla(['cluster', 'show', name], env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^cluster:\\s+${name} `));
    assert.match(human.stdout, /no objects reported yet/);
    const missing = await flotilla(['cluster', 'show', 'no-such-cluster'], env);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /cluster no-such-cluster: no such cluster/);
  });

  test('cluster label and cluster move change a cluster, audited; cluster list --selector shows what a selector selects', async () => {
    for (const [name, labels] of [
      ['sel-eu', ['region=eu', 'gpu=true']],
      ['sel-us', ['region=us', 'gpu=true']],
    ] as const) {
      const r = await flotilla(
        ['cluster', 'add', name, '--env', 'dev', ...labels.flatMap((l) => ['--label', l])],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const names = async (selector: string) =>
      JSON.parse((await flotilla(['cluster', 'list', '--selector', selector, '-o', 'json'], env)).stdout)
        .clusters.map((c: { name: string }) => c.name)
        .sort();
    assert.deepEqual(await names('region in (eu),gpu=true'), ['sel-eu']);
    assert.deepEqual(await names('gpu=true'), ['sel-eu', 'sel-us']);
    assert.deepEqual(await names('region notin (eu),gpu'), ['sel-us']);

    const labelled = await flotilla(['cluster', 'label', 'sel-us', 'region=eu', 'gpu-'], env);
    assert.equal(labelled.code, 0, labelled.stderr);
    assert.equal(labelled.stdout, 'cluster sel-us labels: region=eu\n');
    assert.deepEqual(await names('region in (eu)'), ['sel-eu', 'sel-us']);
    assert.deepEqual(await names('!gpu'), ['dev-1', 'sel-us']);

    const moved = JSON.parse(
      (await flotilla(['cluster', 'move', 'sel-us', '--env', 'dev', '-o', 'json'], env)).stdout,
    );
    assert.equal(moved.environment, 'dev');
    const undeclared = await flotilla(['cluster', 'move', 'sel-us', '--env', 'nowhere'], env);
    assert.notEqual(undeclared.code, 0);
    assert.match(
      undeclared.stderr,
      /environment: nowhere is not declared in flotilla\.yaml \(environments: dev\)/,
    );

    const audit = JSON.parse((await flotilla(['audit', '--cluster', 'sel-us', '-o', 'json'], env)).stdout)
      .audit as { action: string; detail: string }[];
    assert.ok(
      audit.some((a) => a.action === 'cluster.label' && a.detail === '-gpu (was true); region=eu (was us)'),
      JSON.stringify(audit),
    );
    assert.ok(
      audit.some((a) => a.action === 'cluster.move'),
      JSON.stringify(audit),
    );

    const bad = await flotilla(['cluster', 'list', '--selector', 'region in (eu'], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /selector: has unbalanced parentheses/);
    const usage = await flotilla(['cluster', 'label', 'sel-us', 'gpu'], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /expected key=value to set or key- to remove/);
    for (const name of ['sel-eu', 'sel-us'])
      assert.equal((await flotilla(['cluster', 'remove', name], env)).code, 0);
  });

  test('a wrong token and an unreachable hub are clear one-line errors with a non-zero exit', async () => {
    const wrong = await flotilla(['cluster', 'list'], { ...env, FLOTILLA_TOKEN: 'flt_admin_wrong' });
    assert.notEqual(wrong.code, 0);
    assert.equal(wrong.stderr.trim().split('\n').length, 1);
    assert.match(wrong.stderr, /refused the token/);
    const port = await freePort();
    const down = await flotilla(['fleet', 'status', '--hub', `http://127.0.0.1:${port}`], env);
    assert.notEqual(down.code, 0);
    assert.match(down.stderr, /cannot reach the hub at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
    const res = await fetch(`${ready.http}/api/v1/clusters`);
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), {
      error: 'token missing, wrong, expired or revoked',
      code: 'unauthenticated',
    });
  });

  test('the webhook makes the hub fetch at once, and bundle export writes a verifiable envelope', async () => {
    const exported = join(dir, 'dev-1.bundle.json');
    await eventually(async () => {
      const res = await flotilla(['bundle', 'export', '--cluster', 'dev-1', '-o', exported], env);
      assert.equal(res.code, 0, res.stderr);
    });
    await work.commit({ 'environments/dev/app.yaml': app('2') }, 'change');
    const hook = await fetch(`${ready.http}/api/v1/webhooks/git`, { method: 'POST' });
    assert.equal(hook.status, 202);
    const keysFile = JSON.parse(readFileSync(join(dir, 'hub', 'signing-keys.json'), 'utf8')) as {
      pem: string;
    }[];
    const { importSigningKey } = await import('@flotilla/shared');
    const keys = trustedKeys(keysFile.map((k) => importSigningKey(k.pem)));
    await eventually(
      async () => {
        const res = await flotilla(['bundle', 'export', '--cluster', 'dev-1', '-o', exported], env);
        assert.equal(res.code, 0, res.stderr);
        const bundle = verifyBundle(new Uint8Array(readFileSync(exported)), { cluster: 'dev-1', keys });
        assert.equal(bundle.generation, 2);
        assert.equal((bundle.objects[0] as unknown as { data: { v: string } }).data.v, '2');
        assert.ok(!JSON.stringify(bundle).includes('s3cret'), 'no repository credential in a bundle');
      },
      { timeoutMs: 60_000 },
    );
  });

  test('status import verifies an air-gapped status file against the agent key and refuses a tampered one', async () => {
    const added = JSON.parse(
      (await flotilla(['cluster', 'add', 'remote-1', '--env', 'dev', '-o', 'json'], env)).stdout,
    ) as { token: string };
    const agentKey = generateSigningKey();
    const ca = readFileSync(join(dir, 'hub', 'tls', 'ca.pem'));
    const client = createGrpcClient(AgentService, ready.grpc, credentials.createSsl(ca));
    const reg = await new Promise<RegisterResponse>((resolve, reject) =>
      client.register(
        create(RegisterRequestSchema, {
          token: added.token,
          agentVersion: 't',
          agentPublicKey: rawPublicKey(agentKey.publicKey),
        }),
        new Metadata(),
        {},
        (err, res) => (err ? reject(err) : resolve(res!)),
      ),
    );
    client.close();
    assert.equal(reg.cluster, 'remote-1');
    const reportedAt = new Date(Date.now() - 3600_000);
    const envelope = signStatusExport(
      {
        cluster: 'remote-1',
        exportedAt: new Date().toISOString(),
        reports: [
          create(ReportStatusRequestSchema, {
            seq: 1n,
            observedAt: timestampFromDate(reportedAt),
            body: {
              case: 'status',
              value: { appliedGeneration: 1n, revision: 'abc', phase: Phase.SYNCED, health: Health.HEALTHY },
            },
          }),
        ],
      },
      agentKey,
    );
    const file = join(dir, 'status.json');
    writeFileSync(file, encodeEnvelope(envelope));
    const ok = await flotilla(['status', 'import', file, '-o', 'json'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(
      { ...JSON.parse(ok.stdout), exportedAt: undefined },
      {
        cluster: 'remote-1',
        exportedAt: undefined,
        stored: 1,
        duplicates: 0,
      },
    );
    const again = JSON.parse((await flotilla(['status', 'import', file, '-o', 'json'], env)).stdout);
    assert.equal(again.duplicates, 1, 'importing the same file twice stores nothing twice');
    const status = JSON.parse((await flotilla(['fleet', 'status', '-o', 'json'], env)).stdout);
    const remote = status.clusters.find((c: { name: string }) => c.name === 'remote-1');
    assert.equal(remote.health, 'Healthy');
    assert.equal(remote.connected, false);
    assert.equal(remote.reportedVia, 'import');
    assert.equal(remote.reportedAt, reportedAt.toISOString());

    const tampered = JSON.parse(readFileSync(file, 'utf8'));
    const payload = JSON.parse(Buffer.from(tampered.payload, 'base64').toString());
    payload.reports[0].seq = '99';
    tampered.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    writeFileSync(file, JSON.stringify(tampered));
    const refused = await flotilla(['status', 'import', file], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /bad-signature/);
  });

  test('audit -o json lists registrations, removals and refusals', async () => {
    const removed = await flotilla(['cluster', 'remove', 'remote-1'], env);
    assert.equal(removed.code, 0, removed.stderr);
    const audit = JSON.parse((await flotilla(['audit', '-o', 'json'], env)).stdout) as {
      audit: { action: string; outcome: string; cluster: string }[];
    };
    const actions = audit.audit.map((a) => `${a.action}:${a.outcome}:${a.cluster}`);
    for (const expected of [
      'cluster.add:ok:dev-1',
      'agent.register:ok:remote-1',
      'cluster.remove:ok:remote-1',
      'status.import:refused:remote-1',
    ])
      assert.ok(actions.includes(expected), `${expected} in ${actions.join(' ')}`);
  });

  test('fleet status --watch prints the table once, then a row again when a cluster comes or goes, and Ctrl-C ends it with exit 0', async () => {
    const watch = await startProcess(
      process.execPath,
      [BIN, 'fleet', 'status', '--watch', '--interval', '200ms'],
      { name: 'watch', ready: /^dev-1\s+dev\s/m, env: { ...process.env, ...env } },
    );
    try {
      assert.match(watch.log, /^CLUSTER\s+ENV\s+REVISION/);
      const added = await flotilla(['cluster', 'add', 'watch-1', '--env', 'dev'], env);
      assert.equal(added.code, 0, added.stderr);
      await watch.waitFor(/^watch-1\s+dev\s/m);
      const removed = await flotilla(['cluster', 'remove', 'watch-1'], env);
      assert.equal(removed.code, 0, removed.stderr);
      await watch.waitFor(/^watch-1\s.*\sremoved$/m);
      assert.equal(watch.log.match(/^CLUSTER/gm)?.length, 1, 'the header is printed once');
      assert.equal(watch.log.match(/^dev-1\s/gm)?.length, 1, 'an unchanged cluster is not printed again');
      watch.kill('SIGINT');
      assert.equal(await watch.exited, 0);
      assert.doesNotMatch(watch.log, /flotilla:|Error/);
    } finally {
      await watch.stop();
    }
  });

  test('fleet status --watch -o json prints one JSON object a line per change', async () => {
    const watch = await startProcess(
      process.execPath,
      [BIN, 'fleet', 'status', '--watch', '--interval', '200ms', '-o', 'json'],
      { name: 'watch-json', ready: /"name":"dev-1"/, env: { ...process.env, ...env } },
    );
    try {
      const added = await flotilla(['cluster', 'add', 'watch-2', '--env', 'dev'], env);
      assert.equal(added.code, 0, added.stderr);
      await watch.waitFor(/"name":"watch-2"/);
      await flotilla(['cluster', 'remove', 'watch-2'], env);
      await watch.waitFor(/\{"name":"watch-2","removed":true\}/);
      const lines = watch.log
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { name: string; sync?: string; removed?: boolean });
      assert.equal(lines[0]!.name, 'dev-1');
      const mine = lines.slice(1);
      assert.ok(
        mine.every((l) => l.name === 'watch-2'),
        'dev-1 did not change, so it is not printed again',
      );
      assert.equal(mine[0]!.sync, 'OutOfSync');
      assert.deepEqual(mine.at(-1), { name: 'watch-2', removed: true });
      for (let i = 1; i < mine.length; i++)
        assert.notDeepEqual(
          { ...mine[i], lastSeen: null },
          { ...mine[i - 1], lastSeen: null },
          'a line is printed only when something but the last-seen time changed',
        );
      watch.kill('SIGINT');
      assert.equal(await watch.exited, 0);
    } finally {
      await watch.stop();
    }
  });

  test('fleet status --interval without --watch, or a bad interval, is a usage error', async () => {
    const alone = await flotilla(['fleet', 'status', '--interval', '1s'], env);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--interval goes with --watch/);
    const bad = await flotilla(['fleet', 'status', '--watch', '--interval', 'soon'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--interval.*"soon" is not a duration/);
  });

  test('metrics and healthz answer without a token; SIGTERM stops the hub cleanly', async () => {
    assert.deepEqual(await (await fetch(`${ready.http}/healthz`)).json(), { ok: true, leader: true });
    const metrics = await (await fetch(`${ready.http}/metrics`)).text();
    assert.match(metrics, /flotilla_clusters\{connected="false"\} \d+/);
    assert.match(metrics, /flotilla_bundles_published_total \d+/);
    assert.ok(!hubProcess.log.includes('s3cret-repo-pass'), 'no repository password in the hub log');
    hubProcess.kill('SIGTERM');
    assert.equal(await hubProcess.exited, 0);
    assert.match(hubProcess.log, /hub stopped/);
  });
});

describe('a hub process started with --http-tls', () => {
  let dir: string;
  let nats: NatsServer;
  let git: GitServer;
  let hubProcess: ManagedProcess;
  let env: Record<string, string>;
  let caFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-tls-'));
    const init = JSON.parse(
      (await flotilla(['hub', 'init', '--data-dir', join(dir, 'hub'), '-o', 'json'])).stdout,
    ) as { adminToken: string; caFile: string; natsConfig: string };
    caFile = init.caFile;
    nats = await startNatsServer({ config: readFileSync(init.natsConfig, 'utf8') });
    git = await startGitServer();
    await git.createRepo('fleet', { 'flotilla.yaml': FLEET, 'environments/dev/app.yaml': app('1') });
    const started = await startHubProcess(dir, nats, `${git.url}/fleet.git`, ['--http-tls']);
    hubProcess = started.process;
    const ready = started.ready;
    env = { FLOTILLA_HUB: ready.http, FLOTILLA_TOKEN: init.adminToken };
  });
  after(async () => {
    await hubProcess?.stop();
    await git?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the admin API is https; the CLI works with FLOTILLA_CA_FILE and says what to set without it', async () => {
    assert.match(env.FLOTILLA_HUB!, /^https:\/\//);
    const list = await flotilla(['cluster', 'add', 'edge-1', '--env', 'dev', '-o', 'json'], {
      ...env,
      FLOTILLA_CA_FILE: caFile,
    });
    assert.equal(list.code, 0, list.stderr);
    assert.equal(JSON.parse(list.stdout).name, 'edge-1');
    const untrusted = await flotilla(['cluster', 'list'], env);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /does not trust .*FLOTILLA_CA_FILE/);
    assert.ok(!untrusted.stderr.includes(env.FLOTILLA_TOKEN!), 'the token is never echoed');
    const health = await fetch(`${env.FLOTILLA_HUB!.replace('https:', 'http:')}/healthz`).catch(
      (e: Error) => e,
    );
    assert.ok(health instanceof Error, 'plain HTTP is not served on the TLS port');
  });
});
