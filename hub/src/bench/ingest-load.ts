/**
 * The agents' side of `npm run bench:ingest`, in a process of its own so that the hub's
 * process does nothing but the hub's work: Register calls with one-time tokens, then one
 * ReportStatus stream per agent (each on its own connection, as agents have) on which a
 * round queues full status reports at once and waits for every Ack. It speaks the real
 * protocol through the generated client; nothing of the hub is imported.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
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
  SyncState,
} from '@flotilla/proto';
import { AGENT_AUTH_METADATA, errorMessage, generateSigningKey, rawPublicKey } from '@flotilla/shared';
import { type ClientDuplexStream, credentials, Metadata } from '@grpc/grpc-js';

export type LoadRequest =
  | { op: 'join'; address: string; caPem: string; tokens: string[]; concurrency: number }
  | { op: 'open' }
  | { op: 'flood'; perAgent: number; timeoutMs: number }
  | { op: 'stop' };

export type LoadReply =
  | { op: 'joined'; ms: number; cpuMs: number }
  | { op: 'opened'; ms: number }
  /** `ms`: from the first report written to the last Ack received. */
  | { op: 'flooded'; reports: number; ms: number; cpuMs: number }
  | { op: 'stopped' }
  | { op: 'error'; error: string };

type Client = ReturnType<typeof createGrpcClient<typeof AgentService.method>>;

interface Agent {
  cluster: string;
  credential: string;
  client: Client;
  stream?: ClientDuplexStream<ReportStatusRequest, ReportStatusResponse>;
  /** The highest seq written and the highest acknowledged. */
  sent: bigint;
  acked: bigint;
  /** Set when an Ack came out of order or the stream failed: the round fails with it. */
  fault?: string;
}

let address = '';
let caPem = '';
const agents: Agent[] = [];
let onAck: (() => void) | undefined;

const reply = (r: LoadReply) => {
  if (process.connected) process.send?.(r);
};

const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return Math.round((d.user + d.system) / 1000);
};

/** Its own connection per agent (no shared subchannel), as separate agents have. */
const newClient = () =>
  createGrpcClient(AgentService, address, credentials.createSsl(Buffer.from(caPem)), {
    'grpc.use_local_subchannel_pool': 1,
  });

async function join(r: Extract<LoadRequest, { op: 'join' }>): Promise<void> {
  address = r.address;
  caPem = r.caPem;
  // Keys made before the clock starts: the agent's cost, not the hub's.
  const keys = r.tokens.map(() => rawPublicKey(generateSigningKey().publicKey));
  const client = newClient();
  const cpu = process.cpuUsage();
  const t = performance.now();
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < r.tokens.length; i = next++) {
      const res = await new Promise<RegisterResponse>((resolve, reject) =>
        client.register(
          create(RegisterRequestSchema, {
            token: r.tokens[i]!,
            agentVersion: 'bench',
            agentPublicKey: keys[i]!,
          }),
          new Metadata(),
          { deadline: Date.now() + 120_000 },
          (err, res) => (err || !res ? reject(err) : resolve(res)),
        ),
      );
      agents.push({
        cluster: res.cluster,
        credential: res.agentCredential,
        client: newClient(),
        sent: 0n,
        acked: 0n,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(r.concurrency, r.tokens.length) }, lane));
  const ms = Math.round(performance.now() - t);
  client.close();
  reply({ op: 'joined', ms, cpuMs: cpuMs(cpu) });
}

async function open(): Promise<void> {
  const t = performance.now();
  await Promise.all(
    agents.map(
      (a) =>
        new Promise<void>((resolve, reject) => {
          const md = new Metadata();
          md.set(AGENT_AUTH_METADATA, `Bearer ${a.credential}`);
          const stream = a.client.reportStatus(md);
          a.stream = stream;
          stream.on('data', (m: ReportStatusResponse) => {
            if (m.body.case === 'settings') resolve();
            if (m.body.case !== 'ack') return;
            const seq = m.body.value.seq;
            // Acks come strictly in order and are cumulative: Ack{seq} means all up to seq are
            // stored (the hub answers the reports it stored together with one Ack).
            if (seq <= a.acked || seq > a.sent)
              a.fault ??= `${a.cluster}: Ack ${seq} after Ack ${a.acked}, ${a.sent} sent`;
            a.acked = seq;
            onAck?.();
          });
          stream.on('error', (err) => {
            a.fault ??= `${a.cluster}: stream failed: ${errorMessage(err)}`;
            reject(new Error(a.fault));
            onAck?.();
          });
        }),
    ),
  );
  reply({ op: 'opened', ms: Math.round(performance.now() - t) });
}

/**
 * A full status report as an agent sends it: four objects, every other report with one
 * field of the Deployment drifted (so drift opens and clears as the reports go by).
 */
function statusReport(seq: bigint): ReportStatusRequest {
  const drifted = seq % 2n === 1n;
  const ref = (group: string, kind: string, name: string, namespace = 'shop') => ({
    group,
    version: 'v1',
    kind,
    namespace,
    name,
  });
  return create(ReportStatusRequestSchema, {
    seq,
    observedAt: timestampFromDate(new Date()),
    body: {
      case: 'status',
      value: {
        appliedGeneration: 1n,
        revision: '0123456789abcdef0123456789abcdef01234567',
        bundleDigest: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
        phase: drifted ? Phase.PROGRESSING : Phase.SYNCED,
        health: Health.HEALTHY,
        resources: [
          { ref: ref('', 'Namespace', 'shop', ''), sync: SyncState.SYNCED, health: Health.HEALTHY },
          { ref: ref('', 'ConfigMap', 'web-config'), sync: SyncState.SYNCED, health: Health.HEALTHY },
          {
            ref: ref('apps', 'Deployment', 'web'),
            sync: drifted ? SyncState.OUT_OF_SYNC : SyncState.SYNCED,
            health: Health.HEALTHY,
            drift: drifted ? [{ path: 'spec.replicas', desired: '2', live: `${3n + seq}` }] : [],
          },
          { ref: ref('', 'Service', 'web'), sync: SyncState.SYNCED, health: Health.HEALTHY },
        ],
      },
    },
  });
}

async function flood(r: Extract<LoadRequest, { op: 'flood' }>): Promise<void> {
  // Built before the clock starts: what the agents have in their outboxes already.
  const queued = agents.map((a) =>
    Array.from({ length: r.perAgent }, (_, i) => statusReport(a.sent + 1n + BigInt(i))),
  );
  const done = () => agents.every((a) => a.fault || a.acked === a.sent);
  const cpu = process.cpuUsage();
  const t = performance.now();
  const drained = new Promise<void>((resolve) => {
    onAck = () => {
      if (done()) resolve();
    };
  });
  for (const [i, a] of agents.entries())
    for (const report of queued[i]!) {
      a.stream!.write(report);
      a.sent = report.seq;
    }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, r.timeoutMs);
  });
  await Promise.race([drained, timedOut]);
  clearTimeout(timer);
  onAck = undefined;
  const ms = Math.round(performance.now() - t);
  const fault = agents.find((a) => a.fault)?.fault;
  if (fault) throw new Error(fault);
  const behind = agents.filter((a) => a.acked !== a.sent);
  if (behind.length > 0)
    throw new Error(
      `${behind.length} agents still wait for Acks after ${r.timeoutMs} ms (${behind[0]!.cluster}: ${behind[0]!.acked}/${behind[0]!.sent})`,
    );
  reply({ op: 'flooded', reports: agents.length * r.perAgent, ms, cpuMs: cpuMs(cpu) });
}

function stop(): void {
  for (const a of agents) {
    a.stream?.end();
    a.client.close();
  }
  reply({ op: 'stopped' });
  process.disconnect?.();
}

process.on('message', (m: LoadRequest) => {
  const run = async () => {
    switch (m.op) {
      case 'join':
        return join(m);
      case 'open':
        return open();
      case 'flood':
        return flood(m);
      case 'stop':
        return stop();
    }
  };
  run().catch((err) => reply({ op: 'error', error: errorMessage(err) }));
});
