/**
 * Test support for the agent's specs: signed bundles, the hub's own bundle publish on a real
 * nats-server, a fake hub over gRPC. Not exported from the package.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  AgentService,
  addGrpcService,
  RegisterResponseSchema,
  type ReportStatusRequest,
  type ReportStatusResponse,
  ReportStatusResponseSchema,
  RotateCredentialResponseSchema,
} from '@flotilla/proto';
import {
  AGENT_AUTH_METADATA,
  BUNDLE_STREAM,
  type Bundle,
  type BundlePublishConnection,
  contentDigest,
  DEFAULT_SYNC_POLICY,
  encodeEnvelope,
  identityOf,
  type KubeObject,
  publishBundle,
  type SigningKey,
  type SyncPolicy,
  signBundle,
  type TransportHead,
} from '@flotilla/shared';
import * as grpc from '@grpc/grpc-js';
import { KubeConfig } from '@kubernetes/client-node';
import { type NatsConnection, RetentionPolicy, StorageType } from 'nats';
import { certificateHash } from './hub-tls.js';
import {
  emptyChangeSet,
  type ReconcileResult,
  type Reconciler,
  type ResourceReport,
} from './reconcile/index.js';

export function tempDir(t: { after(fn: () => void): void }, prefix = 'flotilla-agent-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // Hooks run in the order they were added, so this one runs before the processes a test
  // started later in it are stopped: a Kubernetes API test server still writing its state file
  // here makes rmdir fail with ENOTEMPTY, and a hook that throws skips the hooks after it, which
  // left that server running and the spec file waiting on it forever. Retried, as rm allows.
  t.after(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));
  return dir;
}

export function configMap(name: string, data: Record<string, string>, namespace = 'shop'): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data };
}

export function makeBundle(
  cluster: string,
  generation: number,
  objects: KubeObject[] = [configMap('web-config', { gen: String(generation) })],
  policy: Partial<SyncPolicy> = {},
): Bundle {
  const full = { ...DEFAULT_SYNC_POLICY, ...policy };
  return {
    cluster,
    environment: 'dev',
    generation,
    revision: `rev${generation}`,
    source: { url: 'http://git.example/src.git', branch: 'main', path: 'environments/dev' },
    createdAt: new Date(0).toISOString(),
    policy: full,
    contentDigest: contentDigest(objects, full),
    objects,
  };
}

export function signedBytes(bundle: Bundle, key: SigningKey): Uint8Array {
  return encodeEnvelope(signBundle(bundle, key));
}

/** Creates the BUNDLES stream as the hub does: latest message per subject, direct get allowed. */
export async function ensureBundleStream(nc: NatsConnection): Promise<void> {
  const jsm = await nc.jetstreamManager();
  await jsm.streams
    .add({
      name: BUNDLE_STREAM,
      subjects: ['bundles.>'],
      max_msgs_per_subject: 1,
      allow_direct: true,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
    })
    .catch(async (err) => {
      if (!String(err).includes('already in use')) throw err;
    });
}

/**
 * Publishes envelope bytes as the hub does, through the very function the hub's bus calls
 * (shared `publishBundle`): the agent's specs never carry a copy of the publish protocol.
 */
export const publishEnvelope = publishBundle;

/**
 * The hub's publish with its notify lost on the way (as a leaf link may lose it): the same
 * chunks and head, through the same function, over a connection that drops core messages.
 */
export function publishWithoutNotify(
  nc: NatsConnection,
  cluster: string,
  generation: number,
  envelope: Uint8Array,
): Promise<TransportHead> {
  const dropsNotify: BundlePublishConnection = {
    jetstream: () => nc.jetstream(),
    publish: () => {},
    flush: () => nc.flush(),
  };
  return publishBundle(dropsNotify, cluster, generation, envelope);
}

/**
 * A Reconciler that keeps objects in memory: enough to test the run loop without a
 * cluster. `drift()` makes its watch report drift, as a `kubectl scale` would.
 */
export interface FakeReconciler extends Reconciler {
  applied: number[];
  /** Simulates another actor changing a live object. */
  drift(path?: string): void;
  watching(): boolean;
}

export function createFakeReconciler(options: { applyDelayMs?: number } = {}): FakeReconciler {
  const applied: number[] = [];
  let listener: ((r: ResourceReport[]) => void) | undefined;
  let bundle: Bundle | undefined;
  const report = (b: Bundle, drift: ResourceReport['drift'] = []): ResourceReport[] =>
    b.objects.map((obj) => ({
      id: identityOf(obj),
      sync: drift.length ? 'OutOfSync' : 'Synced',
      health: 'Healthy',
      healthReason: '',
      drift,
    }));
  const result = (b: Bundle): ReconcileResult => ({
    changes: emptyChangeSet(),
    resources: report(b),
    phase: 'Synced',
    health: 'Healthy',
  });
  return {
    applied,
    async apply(b) {
      if (options.applyDelayMs) await new Promise((r) => setTimeout(r, options.applyDelayMs));
      applied.push(b.generation);
      bundle = b;
      return result(b);
    },
    async assess(b) {
      return result(b);
    },
    watch(_bundle, onChange) {
      listener = onChange;
      return {
        ready: Promise.resolve(),
        async resync() {},
        async stop() {
          if (listener === onChange) listener = undefined;
        },
      };
    },
    drift(path = 'data.gen') {
      if (!bundle || !listener) throw new Error('fake reconciler: nothing applied or watched');
      listener(report(bundle, [{ path, desired: '"1"', live: '"2"', since: new Date(1000) }]));
    },
    watching: () => !!listener,
  };
}

/** A throwaway CA and a hub certificate it signed, made with the openssl CLI. */
export interface TestPki {
  caPem: string;
  caHash: string;
  certPem: string;
  keyPem: string;
  /** Another CA, for "wrong hash" cases. */
  otherCaHash: string;
}

export function createTestPki(dir: string): TestPki {
  const run = (args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const ca = (name: string) =>
    run([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  ca('ca');
  ca('other-ca');
  run([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'hub.key',
    '-out',
    'hub.csr',
    '-subj',
    '/CN=flotilla-hub',
  ]);
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  run([
    'x509',
    '-req',
    '-in',
    'hub.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'hub.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  ]);
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const hash = (pem: string) => certificateHash(new X509Certificate(pem).raw);
  return {
    caPem: read('ca.pem'),
    caHash: hash(read('ca.pem')),
    certPem: read('hub.pem'),
    keyPem: read('hub.key'),
    otherCaHash: hash(read('other-ca.pem')),
  };
}

/** What a fake hub received, and what it answers. */
export interface FakeHub {
  address: string;
  registrations: { token: string; agentPublicKey: Uint8Array; ageRecipient: string }[];
  /** Every report received, in arrival order (duplicates included). */
  received: ReportStatusRequest[];
  authorizations: string[];
  /** The credential each RotateCredential call came with; the answer is `rotated-<n>`. */
  rotations: string[];
  /** The age recipient each RotateCredential call carried ('' when none). */
  rotationRecipients: string[];
  /** Acks only while true (false simulates a hub that stores nothing). */
  acking: boolean;
  sendSync(generation: number): void;
  /** Drops every open status stream, as a hub restart would. */
  dropStreams(): void;
  stop(): Promise<void>;
}

/**
 * An in-test AgentService over TLS with the test PKI: registers one known token, acks each
 * report after "storing" it. Real grpc-js and real TLS on both sides.
 */
export async function startFakeHub(
  pki: TestPki,
  reply: { token: string; response: Omit<MessageInitShape<typeof RegisterResponseSchema>, '$typeName'> },
  port = 0,
): Promise<FakeHub> {
  const server = new grpc.Server();
  const streams = new Set<grpc.ServerDuplexStream<ReportStatusRequest, ReportStatusResponse>>();
  const hub: FakeHub = {
    address: '',
    registrations: [],
    received: [],
    authorizations: [],
    rotations: [],
    rotationRecipients: [],
    acking: true,
    sendSync(generation) {
      for (const s of streams)
        s.write(
          create(ReportStatusResponseSchema, {
            body: { case: 'sync', value: { generation: BigInt(generation) } },
          }),
        );
    },
    dropStreams() {
      for (const s of streams) s.end();
      streams.clear();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        hub.dropStreams();
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
      }),
  };
  addGrpcService(server, AgentService, {
    register(call, callback) {
      hub.registrations.push({
        token: call.request.token,
        agentPublicKey: call.request.agentPublicKey,
        ageRecipient: call.request.ageRecipient,
      });
      if (call.request.token !== reply.token) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: 'token is unknown or already used' });
        return;
      }
      callback(null, create(RegisterResponseSchema, reply.response));
    },
    rotateCredential(call, callback) {
      hub.rotations.push(String(call.metadata.get(AGENT_AUTH_METADATA)[0] ?? ''));
      hub.rotationRecipients.push(call.request.ageRecipient);
      callback(
        null,
        create(RotateCredentialResponseSchema, {
          agentCredential: `rotated-${hub.rotations.length}`,
          expiresAt: timestampFromDate(new Date(Date.now() + 90 * 86_400_000)),
        }),
      );
    },
    reportStatus(call) {
      hub.authorizations.push(String(call.metadata.get(AGENT_AUTH_METADATA)[0] ?? ''));
      streams.add(call);
      call.on('data', (req: ReportStatusRequest) => {
        hub.received.push(req);
        if (hub.acking)
          call.write(create(ReportStatusResponseSchema, { body: { case: 'ack', value: { seq: req.seq } } }));
      });
      call.on('end', () => call.end());
      call.on('error', () => streams.delete(call));
      call.on('close', () => streams.delete(call));
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `127.0.0.1:${port}`,
      grpc.ServerCredentials.createSsl(null, [
        { private_key: Buffer.from(pki.keyPem), cert_chain: Buffer.from(pki.certPem + pki.caPem) },
      ]),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  hub.address = `127.0.0.1:${bound}`;
  return hub;
}

/**
 * A client-node KubeConfig for the Kubernetes API test server's kubeconfig. The test server
 * speaks plain HTTP, which client-node refuses unless TLS verification is marked skipped; its
 * kubeconfig does not say so, kubectl does not need it.
 */
export function testKubeConfig(kubeconfig: string): KubeConfig {
  const loaded = new KubeConfig();
  loaded.loadFromString(kubeconfig);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: loaded.clusters.map((c) => ({ ...c, skipTLSVerify: true })),
    users: loaded.users,
    contexts: loaded.contexts,
    currentContext: loaded.currentContext,
  });
  return kubeConfig;
}
