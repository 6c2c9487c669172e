import { FlotillaError, type Logger } from '@flotilla/shared';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import type { NatsIdentity } from '../nats/identity.js';
import type { SigningKeyRing } from '../pki/signing-keys.js';

/** A registered cluster as the hub's DB holds it. */
export interface Cluster {
  name: string;
  environment: string;
  labels: Record<string, string>;
  createdAt: Date;
}

/** A change of labels: keys to set to a value, keys to remove. */
export interface LabelChange {
  set?: Record<string, string>;
  remove?: string[];
}

/** What `cluster add` hands to the operator, once: the token is never shown again. */
export interface AddedCluster {
  name: string;
  token: string;
  joinCommand: string;
}

/** What a successful Register returns to the agent. */
export interface Registration {
  cluster: string;
  environment: string;
  labels: Record<string, string>;
  agentCredential: string;
  /** When the credential stops working; the agent rotates it well before. */
  credentialExpiresAt: Date;
  nats: { servers: string[]; jwt: string; seed: string; inboxPrefix: string };
  hubKeys: { keyId: string; publicKey: Uint8Array }[];
}

export interface ClusterServiceOptions {
  db: Db;
  audit: AuditLog;
  logger: Logger;
  nats: {
    identity: NatsIdentity;
    /** Where revocations are persisted. */
    dataDir: string;
    /** The NATS URLs agents connect to. */
    agentServers: string[];
    /** Pushes a re-signed account JWT to the servers (revocation). */
    updateAccount(accountJwt: string): Promise<void>;
    /** Removes a cluster's bundles from the stream (a removed cluster's desired state, Secrets included, must not linger). */
    forget?(cluster: string): Promise<void>;
  };
  signingKeys: () => SigningKeyRing;
  /** `HOST:PORT` of the gRPC endpoint as agents reach it. */
  grpcAddress: () => string;
  caHash: string;
  /** Called after a cluster is added, so it is rendered at once. */
  onAdded?: (cluster: Cluster) => void;
  /** The environments flotilla.yaml declares (last good config), if known: a move elsewhere is refused. */
  environments?: () => string[] | undefined;
  /** Called after a cluster's labels or environment changed, so it is rendered again at once. */
  onChanged?: (cluster: Cluster) => void;
  /** Called after a cluster is removed, e.g. to close its status stream. */
  onRemoved?: (cluster: string) => void;
  /** Lifetime of an agent credential; default 90 days. Agents rotate after a third of it. */
  credentialTtlMs?: number;
  now?: () => Date;
}

/** Default lifetime of an agent credential. */
export const DEFAULT_CREDENTIAL_TTL_MS = 90 * 86_400_000;

/** Default lifetime of a bootstrap token. */
export const DEFAULT_TOKEN_TTL_MS = 24 * 3600_000;

/** Refused registration: the agent learns only that, the audit log learns why. */
export class UnauthenticatedError extends FlotillaError {
  constructor(message: string) {
    super('unauthenticated', message);
    this.name = 'UnauthenticatedError';
  }
}
