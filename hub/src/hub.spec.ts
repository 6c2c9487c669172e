import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  eventually,
  type GitServer,
  type GitWorkdir,
  type NatsServer,
  startGitServer,
  startNatsServer,
} from '@flotilla/e2e/harness';
import {
  AgentService,
  createGrpcClient,
  Health,
  Phase,
  RegisterRequestSchema,
  type RegisterResponse,
  type ReportStatusRequest,
  ReportStatusRequestSchema,
  type ReportStatusResponse,
} from '@flotilla/proto';
import {
  BUNDLE_STREAM,
  bundleChunkSubject,
  bundleSubject,
  createLogger,
  decodeTransportHead,
  generateSigningKey,
  rawPublicKey,
  trustedKeys,
  unpackTransport,
  verifyBundle,
} from '@flotilla/shared';
import { credentials, status as grpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { eq } from 'drizzle-orm';
import { connect, ErrorCode, jwtAuthenticator, type NatsConnection, type StoredMsg } from 'nats';
import { agentCredentials, statusReports } from './db/schema.js';
import { createTestPostgresUrl, TEST_DATABASE_KINDS } from './db/testing.js';
import { type Hub, startHub } from './hub.js';
import { initDataDir } from './pki/init.js';

const logger = createLogger({ name: 'hub-test', level: 'silent' });

const FLEET = `environments:
  - name: dev
    path: environments/dev
  - name: staging
    path: environments/staging
  - name: prod
    path: environments/prod
    branch: release
pipeline: [dev, staging, prod]
`;

const configMap = (env: string, value: string) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  cluster: \${cluster.name}
  env: ${env}
  value: "${value}"
`;

async function directGet(nc: NatsConnection, subject: string): Promise<Uint8Array> {
  // `direct` exists on the manager at runtime; nats.js 2.29's interface type omits it.
  const jsm = (await nc.jetstreamManager({ checkAPI: false })) as unknown as {
    direct: { getMessage(stream: string, q: { last_by_subj: string }): Promise<StoredMsg> };
  };
  return (await jsm.direct.getMessage(BUNDLE_STREAM, { last_by_subj: subject })).data;
}

for (const kind of TEST_DATABASE_KINDS) {
  describe(`hub end to end on ${kind}: git → signed bundles on NATS, registration, status`, () => {
    let dir: string;
    let nats: NatsServer;
    let git: GitServer;
    let work: GitWorkdir;
    let hub: Hub;
    let dropDb: (() => Promise<void>) | undefined;
    let client: ReturnType<typeof createGrpcClient<typeof AgentService.method>>;
    const agentConnections: NatsConnection[] = [];

    const generation = async (cluster: string) => (await hub.publisher.latest(cluster))?.generation ?? 0;
    const register = (token: string) =>
      new Promise<RegisterResponse>((resolve, reject) =>
        client.register(
          create(RegisterRequestSchema, {
            token,
            agentVersion: 'test',
            agentPublicKey: rawPublicKey(generateSigningKey().publicKey),
          }),
          new Metadata(),
          { deadline: Date.now() + 30_000 },
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'flotilla-hub-e2e-'));
      await initDataDir(dir);
      nats = await startNatsServer({ config: readFileSync(join(dir, 'nats-server.conf'), 'utf8') });
      git = await startGitServer();
      await git.createRepo('fleet', {
        'flotilla.yaml': FLEET,
        'environments/dev/app.yaml': configMap('dev', '1'),
        'environments/staging/app.yaml': configMap('staging', '1'),
        'environments/prod/app.yaml': configMap('prod', '1'),
      });
      work = await git.clone('fleet');
      await work.git('push', '-q', 'origin', 'HEAD:release');
      let database: string | undefined;
      if (kind === 'postgres') {
        const pg = await createTestPostgresUrl();
        database = pg.url;
        dropDb = pg.drop;
      }
      hub = await startHub({
        dataDir: dir,
        nats: nats.url,
        repo: { url: `${git.url}/fleet.git` },
        ...(database ? { database } : {}),
        http: '127.0.0.1:0',
        grpc: '127.0.0.1:0',
        pollMs: 0,
        heartbeatWindowMs: 5_000,
        logger,
      });
      client = createGrpcClient(
        AgentService,
        hub.grpcAddress,
        credentials.createSsl(Buffer.from(hub.identity.tls.caPem)),
      );
    });

    after(async () => {
      client?.close();
      for (const nc of agentConnections) await nc.close().catch(() => {});
      await hub?.stop();
      await dropDb?.();
      await git?.stop();
      await nats?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('a newly added cluster is rendered and published at once', async () => {
      for (const [name, env] of [
        ['dev-1', 'dev'],
        ['staging-1', 'staging'],
        ['prod-1', 'prod'],
      ] as const)
        await hub.clusters.add({ name, environment: env, labels: { tier: env } }, 'test');
      await eventually(
        async () => {
          for (const c of ['dev-1', 'staging-1', 'prod-1']) assert.equal(await generation(c), 1, c);
        },
        { timeoutMs: 60_000 },
      );
    });

    test('a commit to one environment produces a new generation for exactly its clusters', async () => {
      await hub.publishLoop.trigger('test: nothing changed');
      assert.deepEqual(
        [await generation('dev-1'), await generation('staging-1'), await generation('prod-1')],
        [1, 1, 1],
      );
      await work.commit({ 'environments/dev/app.yaml': configMap('dev', '2') }, 'dev only');
      const pass = await hub.publishLoop.trigger('test: dev commit');
      assert.equal(pass.error, null);
      assert.deepEqual(
        [await generation('dev-1'), await generation('staging-1'), await generation('prod-1')],
        [2, 1, 1],
      );
    });

    test('a broken environment keeps its last good bundle and its error shows in fleet status', async () => {
      await work.commit(
        { 'environments/staging/app.yaml': 'kind: ConfigMap\nmetadata: [unclosed\n' },
        'break staging',
      );
      await work.commit({ 'environments/dev/app.yaml': configMap('dev', '3') }, 'dev moves on');
      await hub.publishLoop.trigger('test: broken staging');
      assert.equal(await generation('staging-1'), 1);
      assert.equal(await generation('dev-1'), 3);
      const status = await hub.fleet.status();
      const staging = status.find((c) => c.name === 'staging-1');
      assert.match(staging?.error ?? '', /environments\/staging\/app\.yaml/);
      assert.equal(status.find((c) => c.name === 'dev-1')?.error, null);
      assert.equal(status.find((c) => c.name === 'prod-1')?.error, null);
      // Fixed: the error clears.
      await work.commit({ 'environments/staging/app.yaml': configMap('staging', '1') }, 'fix staging');
      await hub.publishLoop.trigger('test: fixed');
      assert.equal((await hub.fleet.status()).find((c) => c.name === 'staging-1')?.error, null);
      assert.equal(await generation('staging-1'), 1, 'same content as before: no new generation');
    });

    test('a missing branch and an invalid flotilla.yaml keep every last good bundle and show the error', async () => {
      await work.git('push', '-q', 'origin', ':release');
      await hub.publishLoop.trigger('test: no release branch');
      let status = await hub.fleet.status();
      assert.match(status.find((c) => c.name === 'prod-1')?.error ?? '', /environment prod: .*release/);
      assert.equal(status.find((c) => c.name === 'dev-1')?.error, null);
      await work.git('push', '-q', 'origin', 'HEAD:release');
      await work.commit({ 'flotilla.yaml': 'environments: nope\n' }, 'break config');
      await hub.publishLoop.trigger('test: invalid config');
      status = await hub.fleet.status();
      for (const c of status) assert.match(c.error ?? '', /flotilla\.yaml/, c.name);
      assert.equal(await generation('dev-1'), 3);
      await work.commit({ 'flotilla.yaml': FLEET }, 'fix config');
      await hub.publishLoop.trigger('test: config fixed');
      status = await hub.fleet.status();
      for (const c of status) assert.equal(c.error, null, c.name);
    });

    let dev: RegisterResponse;
    test('Register over TLS: a token works once (concurrent joins: exactly one wins) and labels are the hub’s', async () => {
      const { token } = await hub.clusters.add(
        { name: 'dev-2', environment: 'dev', labels: { region: 'eu' } },
        'test',
      );
      const attempts = await Promise.allSettled([register(token), register(token)]);
      const ok = attempts.filter(
        (a) => a.status === 'fulfilled',
      ) as PromiseFulfilledResult<RegisterResponse>[];
      const refused = attempts.filter((a) => a.status === 'rejected') as PromiseRejectedResult[];
      assert.equal(ok.length, 1);
      assert.equal((refused[0]!.reason as ServiceError).code, grpcStatus.UNAUTHENTICATED);
      dev = ok[0]!.value;
      assert.equal(dev.cluster, 'dev-2');
      assert.deepEqual({ ...dev.labels }, { region: 'eu' });
      assert.deepEqual(dev.nats?.servers, [nats.url]);
      await assert.rejects(
        register('flt_join_unknown'),
        (err: ServiceError) => err.code === grpcStatus.UNAUTHENTICATED,
      );
      const audit = await hub.audit.list();
      assert.ok(audit.filter((a) => a.action === 'agent.register' && a.outcome === 'refused').length >= 2);
    });

    test("the agent's NATS credentials read and verify its own bundle and are refused another cluster's", async () => {
      await eventually(
        async () => assert.ok((await generation('dev-2')) >= 1, "not yet: (await generation('dev-2')) >= 1"),
        { timeoutMs: 60_000 },
      );
      const nc = await connect({
        servers: dev.nats!.servers,
        authenticator: jwtAuthenticator(dev.nats!.jwt, new TextEncoder().encode(dev.nats!.seed)),
        inboxPrefix: dev.nats!.inboxPrefix,
      });
      agentConnections.push(nc);
      const head = decodeTransportHead(await directGet(nc, bundleSubject('dev-2')));
      const bytes = await unpackTransport(head, (i) => directGet(nc, bundleChunkSubject('dev-2', i)));
      const bundle = verifyBundle(bytes, {
        cluster: 'dev-2',
        keys: trustedKeys(dev.hubKeys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }))),
      });
      assert.equal(bundle.environment, 'dev');
      assert.equal(bundle.objects[0]?.metadata.name, 'web-config');
      assert.equal((bundle.objects[0] as unknown as { data: { cluster: string } }).data.cluster, 'dev-2');
      assert.equal(bundle.source.url, `${git.url}/fleet.git`);
      await assert.rejects(directGet(nc, bundleSubject('prod-1')), /Permissions Violation/);
    });

    test('status reports are stored idempotently and acknowledged only after they are stored', async () => {
      const md = new Metadata();
      md.set('authorization', `Bearer ${dev.agentCredential}`);
      const stream = client.reportStatus(md);
      const acks: number[] = [];
      const firsts: string[] = [];
      stream.on('data', (r: ReportStatusResponse) => {
        firsts.push(
          r.body.case === 'settings' ? `settings:${r.body.value.heartbeatSeconds}` : `${r.body.case}`,
        );
        if (r.body.case === 'ack') acks.push(Number(r.body.value.seq));
      });
      stream.on('error', () => {});
      const report = (seq: number): ReportStatusRequest =>
        create(ReportStatusRequestSchema, {
          seq: BigInt(seq),
          observedAt: timestampFromDate(new Date()),
          body: {
            case: 'status',
            value: {
              appliedGeneration: 1n,
              revision: 'r',
              phase: Phase.SYNCED,
              health: Health.HEALTHY,
              resources: [],
            },
          },
        });
      const stored = async () =>
        (await hub.database.db.select().from(statusReports).where(eq(statusReports.cluster, 'dev-2'))).length;
      stream.write(report(1));
      await eventually(() => assert.deepEqual(acks, [1]));
      assert.equal(await stored(), 1, 'stored before its ack arrived');
      assert.equal(firsts[0], 'settings:1', 'the stream opens with the pace: a third of the 5 s window');
      stream.write(report(1));
      stream.write(report(2));
      // Acks are cumulative: the duplicate 1 and 2, stored together, may be answered by one Ack 2.
      await eventually(() => assert.equal(acks.at(-1), 2));
      assert.ok(
        acks.every((seq, i) => i === 0 || seq >= acks[i - 1]!),
        `acks never go back: ${acks.join(', ')}`,
      );
      assert.equal(await stored(), 2);
      const status = (await hub.fleet.status()).find((c) => c.name === 'dev-2');
      assert.equal(status?.connected, true);
      assert.equal(status?.health, 'Healthy');

      // Manual sync reaches the open stream.
      const syncs: number[] = [];
      stream.on('data', (r: ReportStatusResponse) => {
        if (r.body.case === 'sync') syncs.push(Number(r.body.value.generation));
      });
      const [outcome] = await hub.applyRequests.request({ cluster: 'dev-2' }, 'test');
      assert.equal(outcome?.delivered, true);
      await eventually(() => assert.deepEqual(syncs, [outcome!.generation]));

      // Removal revokes the credential: the stream ends UNAUTHENTICATED, NATS refuses the user.
      const ended = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
      await hub.clusters.remove('dev-2', 'test');
      assert.equal((await ended).code, grpcStatus.UNAUTHENTICATED);
      await eventually(
        () => assert.ok(agentConnections[0]!.isClosed(), 'not yet: agentConnections[0]!.isClosed()'),
        { timeoutMs: 10_000 },
      );
      await assert.rejects(
        connect({
          servers: dev.nats!.servers,
          authenticator: jwtAuthenticator(dev.nats!.jwt, new TextEncoder().encode(dev.nats!.seed)),
          inboxPrefix: dev.nats!.inboxPrefix,
          maxReconnectAttempts: 0,
        }),
        { code: ErrorCode.AuthorizationViolation },
      );
      const again = client.reportStatus(md);
      const refused = await new Promise<ServiceError>((resolve) => again.on('error', resolve));
      assert.equal(refused.code, grpcStatus.UNAUTHENTICATED);
    });

    test('a credential revoked by another hub replica (in the shared database) ends an open stream at its next report', async () => {
      const { token } = await hub.clusters.add({ name: 'dev-3', environment: 'dev', labels: {} }, 'test');
      const dev3 = await register(token);
      const md = new Metadata();
      md.set('authorization', `Bearer ${dev3.agentCredential}`);
      const stream = client.reportStatus(md);
      const acks: number[] = [];
      stream.on('data', (r: ReportStatusResponse) => {
        if (r.body.case === 'ack') acks.push(Number(r.body.value.seq));
      });
      const ended = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
      const heartbeat = (seq: number) =>
        create(ReportStatusRequestSchema, { seq: BigInt(seq), body: { case: 'heartbeat', value: {} } });
      stream.write(heartbeat(1));
      await eventually(() => assert.deepEqual(acks, [1]));
      // What `cluster remove` on another replica leaves behind: the row revoked, no local stream told.
      await hub.database.db
        .update(agentCredentials)
        .set({ revokedAt: new Date() })
        .where(eq(agentCredentials.cluster, 'dev-3'));
      stream.write(heartbeat(2));
      assert.equal((await ended).code, grpcStatus.UNAUTHENTICATED);
      assert.deepEqual(acks, [1], 'the report after the revocation is neither stored nor acknowledged');
    });
  });
}
