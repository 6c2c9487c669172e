import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BUNDLE_STREAM,
  bundleChunkSubject,
  bundleSubject,
  decodeTransportHead,
  type TransportHead,
  unpackTransport,
} from '@flotilla/shared';
import { createUser, encodeUser, fromSeed } from '@nats-io/jwt';
import { connect, jwtAuthenticator, type NatsConnection } from 'nats';
import pg from 'pg';
import type { Fleet } from '../fleet/fleet.js';
import type { ManagedProcess } from '../harness/process.js';

/** The parts of an agent's `identity.json` (agent/src/state.ts) these tests use. */
export interface AgentIdentityFile {
  hub: string;
  cluster: string;
  environment: string;
  agentCredential: string;
  nats: { servers: string[]; jwt: string; seed: string; inboxPrefix: string };
  agentKey: string;
}

export function readIdentity(stateDir: string): AgentIdentityFile {
  return JSON.parse(readFileSync(join(stateDir, 'identity.json'), 'utf8')) as AgentIdentityFile;
}

/** A NATS connection with exactly the credentials (and inbox prefix) an agent got at join. */
export function connectAsAgent(
  identity: AgentIdentityFile,
  options: { reconnect?: boolean } = {},
): Promise<NatsConnection> {
  return connect({
    servers: identity.nats.servers,
    name: `security-test as ${identity.cluster}`,
    inboxPrefix: identity.nats.inboxPrefix,
    authenticator: jwtAuthenticator(identity.nats.jwt, new TextEncoder().encode(identity.nats.seed)),
    reconnect: options.reconnect ?? false,
  });
}

/**
 * A NATS connection with the hub's own powers: a user signed by the fleet account key that
 * `flotilla hub init` wrote to the data dir (as hub/src/nats/identity.ts mintHubUser does).
 */
export async function connectAsHub(fleet: Fleet): Promise<NatsConnection> {
  const seed = readFileSync(join(fleet.hubDataDir, 'nats', 'account.seed'), 'utf8').trim();
  const account = fromSeed(new TextEncoder().encode(seed));
  const user = createUser();
  const jwt = await encodeUser('security-test-publisher', user, account, { subs: -1, data: -1, payload: -1 });
  return connect({
    servers: fleet.nats.url,
    name: 'security-test as hub',
    authenticator: jwtAuthenticator(jwt, user.getSeed()),
  });
}

/** `p`, or a rejection naming `what` after `ms`; the timer never outlives the race. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves to the error message when `p` is refused by the server for lack of permission. */
export async function permissionRefused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const text = String(err);
    if (/permissions violation/i.test(text)) return text;
    throw new Error(`expected a permissions violation, got: ${text}`, { cause: err });
  }
  throw new Error('expected a permissions violation, but the server answered');
}

/** Subscribes and resolves to the server's refusal; throws if a message arrives or nothing happens. */
export async function subscriptionRefused(
  nc: NatsConnection,
  subject: string,
  timeoutMs = 5000,
): Promise<string> {
  const sub = nc.subscribe(subject);
  const outcome = (async () => {
    for await (const m of sub) throw new Error(`subscription to ${subject} delivered ${m.subject}`);
    throw new Error(`subscription to ${subject} ended without an error`);
  })();
  return permissionRefused(within(outcome, timeoutMs, `refusal of a subscription to ${subject}`));
}

/** Every byte a process prints from now on, on top of what it kept so far (ManagedProcess keeps only a tail). */
export function captureOutput(p: ManagedProcess): () => string {
  let text = p.log;
  const keep = (chunk: Buffer) => {
    text += chunk.toString();
  };
  p.child.stdout?.on('data', keep);
  p.child.stderr?.on('data', keep);
  return () => text;
}

/** The latest bundle of a cluster as it sits in the BUNDLES stream: its transport head and envelope bytes. */
export async function readPublishedBundle(
  hub: NatsConnection,
  cluster: string,
): Promise<{ head: TransportHead; envelope: Uint8Array }> {
  const jsm = await hub.jetstreamManager();
  const headMsg = await jsm.streams.getMessage(BUNDLE_STREAM, { last_by_subj: bundleSubject(cluster) });
  const head = decodeTransportHead(headMsg.data);
  const envelope = await unpackTransport(head, async (i) => {
    const m = await jsm.streams.getMessage(BUNDLE_STREAM, { last_by_subj: bundleChunkSubject(cluster, i) });
    return m.data;
  });
  return { head, envelope };
}

/** The parts of a bundle payload (shared/src/bundle.ts) the tests read or change, the rest kept as is. */
export interface BundlePayload {
  cluster: string;
  generation: number;
  objects: { kind: string; spec?: Record<string, unknown> }[];
  [field: string]: unknown;
}

/** An envelope (shared/src/envelope.ts) whose payload JSON went through `edit`, signatures kept as they were. */
export function tamperEnvelope(envelope: Uint8Array, edit: (bundle: BundlePayload) => void): Uint8Array {
  const env = JSON.parse(new TextDecoder().decode(envelope)) as { payload: string };
  const bundle = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as BundlePayload;
  edit(bundle);
  env.payload = Buffer.from(JSON.stringify(bundle)).toString('base64');
  return new TextEncoder().encode(JSON.stringify(env));
}

/** The signed bundle inside an envelope, read without verifying it. */
export function peekBundle(envelope: Uint8Array): BundlePayload {
  const env = JSON.parse(new TextDecoder().decode(envelope)) as { payload: string };
  return JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as BundlePayload;
}

/** A status report as the hub stored it: its seq and when the agent observed it. */
export interface StoredReport {
  seq: bigint;
  observedAt: Date | null;
}

/**
 * Every status report the hub stored for a cluster (its `status_reports` rows, read from the
 * hub's PostgreSQL), by ascending seq, duplicates kept: the hub's own record of what arrived,
 * not the agent's.
 */
export async function storedReports(databaseUrl: string, cluster: string): Promise<StoredReport[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ seq: string; observed_at: Date | null }>(
      'SELECT seq::text AS seq, observed_at FROM status_reports WHERE cluster = $1 ORDER BY seq',
      [cluster],
    );
    return rows.map((r) => ({ seq: BigInt(r.seq), observedAt: r.observed_at }));
  } finally {
    await client.end();
  }
}

/**
 * Ascending seqs cut into runs of consecutive numbers. Each agent process hands out
 * consecutive seqs from a floor above every earlier one (agent/src/outbox.ts, the time in
 * µs), so with nothing lost there is exactly one run per agent process; a gap is a lost report.
 */
export function seqRuns(seqs: bigint[]): bigint[][] {
  const runs: bigint[][] = [];
  for (const seq of seqs) {
    const run = runs.at(-1);
    if (run && seq === run.at(-1)! + 1n) run.push(seq);
    else runs.push([seq]);
  }
  return runs;
}

/** Runs as `first..last (count)`, for assertion messages. */
export function describeRuns(runs: bigint[][]): string {
  return runs.map((r) => `${r[0]}..${r.at(-1)} (${r.length})`).join(', ');
}
