import { createAgentCredentials } from './agent-credentials.js';
import { createJoinTokens } from './join-tokens.js';
import { createNatsRevocation } from './nats-revocation.js';
import { createClusterRegistry } from './registry.js';
import type { AddedCluster, Cluster, ClusterServiceOptions, LabelChange, Registration } from './types.js';

export * from './types.js';

/**
 * Clusters and their identity: add (with a single-use bootstrap token), list, remove
 * (revoking the agent credential and NATS user), Register, and agent authentication.
 * Labels come from here only; an agent can neither set nor change them.
 */
export interface ClusterService {
  add(
    input: { name: string; environment: string; labels?: Record<string, string>; ttlMs?: number },
    actor: string,
  ): Promise<AddedCluster>;
  /**
   * A new bootstrap token for an existing cluster, to join it again (a rebuilt cluster, a lost
   * state dir, an expired credential). The join it is used for revokes the cluster's earlier
   * agent credentials and NATS users: one agent per cluster.
   */
  issueToken(name: string, input: { ttlMs?: number }, actor: string): Promise<AddedCluster>;
  list(): Promise<Cluster[]>;
  get(name: string): Promise<Cluster | undefined>;
  /**
   * Sets and removes labels (`flotilla cluster label NAME k=v k2-`), audited with the change.
   * The cluster is rendered again at once: groups and apps it now selects or left follow.
   */
  label(name: string, change: LabelChange, actor: string): Promise<Cluster>;
  /** Moves a cluster to another environment (`flotilla cluster move NAME --env E`), audited. */
  move(name: string, environment: string, actor: string): Promise<Cluster>;
  remove(name: string, actor: string): Promise<void>;
  register(input: {
    token: string;
    agentPublicKey: Uint8Array;
    agentVersion: string;
    peer: string;
  }): Promise<Registration>;
  /** The cluster an agent credential belongs to, or undefined when unknown, revoked or expired. */
  authenticate(credential: string): Promise<string | undefined>;
  /**
   * A new credential for the agent holding `credential`, with a new expiry. The old one keeps
   * working until the new one is first used; a second rotation with the old one (its answer was
   * lost) voids the unused first. Unknown, revoked or expired: UnauthenticatedError.
   */
  rotateCredential(
    credential: string,
    peer: string,
  ): Promise<{ cluster: string; agentCredential: string; expiresAt: Date; nats: Registration['nats'] }>;
  /** Agent public keys stored at registration (verify air-gapped status files). */
  agentKeys(cluster: string): Promise<Uint8Array[]>;
}

export function createClusterService(options: ClusterServiceOptions): ClusterService {
  const { db, audit, logger } = options;
  const now = options.now ?? (() => new Date());
  const revocation = createNatsRevocation(options.nats, logger);
  const credentials = createAgentCredentials({
    db,
    audit,
    logger,
    revocation,
    natsIdentity: options.nats.identity,
    agentServers: options.nats.agentServers,
    ...(options.credentialTtlMs === undefined ? {} : { credentialTtlMs: options.credentialTtlMs }),
    now,
  });
  const joinTokens = createJoinTokens({
    db,
    audit,
    logger,
    credentials,
    // The registry is built next; a join reads it only when an agent registers.
    getCluster: (name) => registry.get(name),
    signingKeys: options.signingKeys,
    grpcAddress: options.grpcAddress,
    caHash: options.caHash,
  });
  const registry = createClusterRegistry({
    db,
    audit,
    logger,
    joinTokens,
    credentials,
    revocation,
    ...(options.nats.forget ? { forgetBundles: options.nats.forget } : {}),
    ...(options.onAdded ? { onAdded: options.onAdded } : {}),
    ...(options.environments ? { environments: options.environments } : {}),
    ...(options.onChanged ? { onChanged: options.onChanged } : {}),
    ...(options.onRemoved ? { onRemoved: options.onRemoved } : {}),
  });
  return {
    ...registry,
    issueToken: joinTokens.issue,
    register: joinTokens.register,
    authenticate: credentials.authenticate,
    rotateCredential: credentials.rotate,
    agentKeys: credentials.agentKeys,
  };
}
