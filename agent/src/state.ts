import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  errorMessage,
  exportSigningKey,
  FlotillaError,
  InvalidError,
  importSigningKey,
  type SigningKey,
  type TrustedKeys,
  trustedKeys,
} from '@flotilla/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import { createKubeClient } from './kube-client.js';

export { DEFAULT_STATE_DIR } from './state-dir.js';
/** The Secret (in the agent's own namespace) that holds its identity when it runs in a cluster. */
export const IDENTITY_SECRET_NAME = 'flotilla-agent';
const IDENTITY_FILE = 'identity.json';
const IDENTITY_SECRET_KEY = 'identity.json';
const LAST_BUNDLE_FILE = 'last-bundle.json';
const LOCK_FILE = 'agent.pid';

/**
 * What an agent received at join, plus its own key: everything `run` needs to start. It holds
 * secrets (agent credential, NATS seed, private key), so it is stored with mode 0600 or in a
 * Secret, and never logged.
 */
export interface AgentIdentity {
  /** The hub's gRPC address, `HOST:PORT`. */
  hub: string;
  /** PEM of the hub CA pinned at join: the only root trusted for the hub's TLS. */
  caPem: string;
  cluster: string;
  environment: string;
  labels: Record<string, string>;
  agentCredential: string;
  nats: { servers: string[]; jwt: string; seed: string; inboxPrefix: string };
  /** Hub bundle keys, raw ed25519 public keys in base64. */
  hubKeys: { keyId: string; publicKey: string }[];
  /** The agent's ed25519 private key (PKCS#8 PEM); signs air-gapped status exports. */
  agentKey: string;
  registeredAt: string;
  /** When `agentCredential` stops working (absent: issued by a hub without expiry). */
  credentialExpiresAt?: string;
  /** When `agentCredential` was issued, if by rotation (else `registeredAt`). */
  credentialIssuedAt?: string;
  /**
   * age identities (`AGE-SECRET-KEY-1…`) that open SOPS files for this cluster; the first is
   * the agent's own, made at join or given by the operator. Absent in identities from before.
   */
  ageIdentities?: string[];
  /** The first age identity's recipient (`age1…`), the one the hub lists for this cluster. */
  ageRecipient?: string;
  /** False until the hub has `ageRecipient` (an age key added after join goes with the next rotation). */
  ageRecipientRegistered?: boolean;
}

/**
 * Whether the agent should trade its credential for a new one now: once a third of its
 * lifetime has passed (a 90-day credential at 30 days), and at once when it has no expiry or
 * an age recipient to register.
 */
export function credentialRotationDue(identity: AgentIdentity, now = new Date()): boolean {
  if (!identity.credentialExpiresAt) return true;
  // An age recipient the hub does not know yet travels with a rotation: rotate now.
  if (identity.ageRecipient && identity.ageRecipientRegistered === false) return true;
  const issued = Date.parse(identity.credentialIssuedAt ?? identity.registeredAt);
  const expires = Date.parse(identity.credentialExpiresAt);
  return now.getTime() >= issued + (expires - issued) / 3;
}

/** Where an identity is kept: a file in the state dir, or a Secret in the cluster. */
export interface IdentityStore {
  /** Human-readable location, for messages. */
  readonly location: string;
  load(): Promise<AgentIdentity | undefined>;
  save(identity: AgentIdentity): Promise<void>;
}

/** The hub keys an identity pins, ready for verifyBundle. */
export function identityTrustedKeys(identity: AgentIdentity): TrustedKeys {
  return trustedKeys(
    identity.hubKeys.map((k) => ({
      keyId: k.keyId,
      publicKey: new Uint8Array(Buffer.from(k.publicKey, 'base64')),
    })),
  );
}

export function identitySigningKey(identity: AgentIdentity): SigningKey {
  return importSigningKey(identity.agentKey);
}

export function encodeAgentKey(key: SigningKey): string {
  return exportSigningKey(key);
}

/**
 * Writes a file so that a crash leaves either the old or the new content, never a torn
 * one: write a temp file, fsync it, rename over the target, fsync the directory.
 */
export function writeFileDurable(path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // The directory is made on first use only: the outbox and the last-bundle file are
    // rewritten often, and a mkdir each time is a syscall or two for nothing.
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    fd = openSync(tmp, 'w', mode);
  }
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** fsyncs a directory so a rename or a new file in it survives a crash. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseIdentity(text: string, where: string): AgentIdentity {
  let raw: Partial<AgentIdentity>;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidError(where, 'is not JSON', { cause: err });
  }
  for (const field of ['hub', 'caPem', 'cluster', 'agentCredential', 'agentKey'] as const) {
    if (typeof raw[field] !== 'string' || !raw[field])
      throw new InvalidError(`${where}: ${field}`, 'is missing');
  }
  if (!raw.nats || !Array.isArray(raw.hubKeys)) throw new InvalidError(where, 'lacks nats or hubKeys');
  return raw as AgentIdentity;
}

/** Keeps the identity in `<dir>/identity.json`, mode 0600. */
export function createFileIdentityStore(dir: string): IdentityStore {
  const path = join(dir, IDENTITY_FILE);
  return {
    location: path,
    async load() {
      const bytes = readIfExists(path);
      return bytes ? parseIdentity(bytes.toString('utf8'), path) : undefined;
    },
    async save(identity) {
      writeFileDurable(path, `${JSON.stringify(identity, null, 2)}\n`);
    },
  };
}

export interface SecretIdentityStoreOptions {
  kubeConfig: KubeConfig;
  /** The agent's own namespace. */
  namespace: string;
  /** Default `flotilla-agent`. */
  name?: string;
}

/** Keeps the identity in a Secret of the agent's own namespace (in-cluster agents). */
export function createSecretIdentityStore(options: SecretIdentityStoreOptions): IdentityStore {
  const name = options.name ?? IDENTITY_SECRET_NAME;
  const namespace = options.namespace;
  const kube = createKubeClient(options.kubeConfig);
  const secrets = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  const secret = `${secrets}/${encodeURIComponent(name)}`;
  const location = `Secret ${namespace}/${name}`;
  const isNotFound = (err: unknown) => (err as { code?: number })?.code === 404;
  return {
    location,
    async load() {
      try {
        const found = await kube.request<{ data?: Record<string, string> }>('GET', secret);
        const value = found.data?.[IDENTITY_SECRET_KEY];
        if (!value) return undefined;
        return parseIdentity(Buffer.from(value, 'base64').toString('utf8'), location);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw new FlotillaError('unavailable', `${location}: read failed: ${errorMessage(err)}`, {
          cause: err,
        });
      }
    },
    async save(identity) {
      const body = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'flotilla-agent' } },
        type: 'Opaque',
        data: { [IDENTITY_SECRET_KEY]: Buffer.from(JSON.stringify(identity)).toString('base64') },
      };
      try {
        await kube.request('PUT', secret, { body });
      } catch (err) {
        if (!isNotFound(err))
          throw new FlotillaError('unavailable', `${location}: write failed`, { cause: err });
        await kube.request('POST', secrets, { body }).catch((cause) => {
          throw new FlotillaError('unavailable', `${location}: create failed: ${errorMessage(cause)}`, {
            cause,
          });
        });
      }
    },
  };
}

/** The namespace a pod runs in, from its service account mount. */
export function inClusterNamespace(): string {
  const ns = readIfExists('/var/run/secrets/kubernetes.io/serviceaccount/namespace');
  if (!ns) throw new InvalidError('--in-cluster', 'no service account namespace is mounted');
  return ns.toString('utf8').trim();
}

/**
 * The last good bundle: the verified envelope bytes, exactly as received. The agent
 * enforces it on start, before and without any hub or NATS connection.
 */
export interface BundleStore {
  readonly path: string;
  read(): Uint8Array | undefined;
  write(envelope: Uint8Array): void;
}

export function createBundleStore(dir: string): BundleStore {
  const path = join(dir, LAST_BUNDLE_FILE);
  return {
    path,
    read() {
      const bytes = readIfExists(path);
      return bytes ? new Uint8Array(bytes) : undefined;
    },
    write(envelope) {
      writeFileDurable(path, envelope);
    },
  };
}

/** Who holds a state dir: one `run` (or one exclusive command) at a time. */
export interface StateLock {
  release(): void;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** State dirs locked by this process (its own pid in a lock file is otherwise a stale one, e.g. pid 1 in a container). */
const heldHere = new Set<string>();

/** The pid holding the state dir, if that process is alive. */
export function stateDirHolder(dir: string): number | undefined {
  if (heldHere.has(resolve(dir))) return process.pid;
  const text = readIfExists(join(dir, LOCK_FILE))?.toString('utf8').trim();
  const pid = Number(text);
  return pid && pid !== process.pid && pidAlive(pid) ? pid : undefined;
}

/**
 * Takes the state dir for this process, so that two agents never append to one outbox.
 * A lock left by a dead process is taken over.
 */
export function lockStateDir(dir: string): StateLock {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      if (heldHere.has(resolve(dir)))
        throw Object.assign(new Error('held by this process'), { code: 'EEXIST' });
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldHere.add(resolve(dir));
      return {
        release() {
          heldHere.delete(resolve(dir));
          if (readIfExists(path)?.toString('utf8').trim() === String(process.pid))
            rmSync(path, { force: true });
        },
      };
    } catch (err) {
      const stale = (err as NodeJS.ErrnoException).code === 'EEXIST' && stateDirHolder(dir) === undefined;
      if (stale && attempt === 0) {
        rmSync(path, { force: true });
        continue;
      }
      const holder = stateDirHolder(dir);
      throw new FlotillaError(
        'conflict',
        `state dir ${dir}: in use${holder ? ` by process ${holder}` : ''}; stop that agent first`,
        { cause: err },
      );
    }
  }
}

const KUBECONFIG_FILE = 'kubeconfig-path';

/**
 * Remembers which kubeconfig `join` or `run` was given, so that `import` and `status
 * export` in the same state dir reach the same cluster without repeating the flag.
 */
export function rememberKubeconfig(dir: string, path: string): void {
  writeFileDurable(join(dir, KUBECONFIG_FILE), `${path}\n`);
}

export function rememberedKubeconfig(dir: string): string | undefined {
  return readIfExists(join(dir, KUBECONFIG_FILE))?.toString('utf8').trim() || undefined;
}
