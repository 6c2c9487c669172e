import { create } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import {
  AgentService,
  createGrpcClient,
  RegisterRequestSchema,
  type RegisterResponse,
} from '@flotilla/proto';
import {
  assertClusterName,
  createLogger,
  FlotillaError,
  generateSigningKey,
  type Logger,
  rawPublicKey,
  trustedKeys,
} from '@flotilla/shared';
import { status as grpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { fetchPinnedCa, hubChannelCredentials, parseHubAddress } from './hub-tls.js';
import { ageKeyOf, newAgeKey } from './secrets/index.js';
import { type AgentIdentity, encodeAgentKey, type IdentityStore } from './state.js';

import { AGENT_VERSION } from './version.js';

export { AGENT_VERSION };

export interface JoinOptions {
  /** The hub's gRPC address, `HOST:PORT`. */
  hub: string;
  /** The single-use bootstrap token from `flotilla cluster add`. */
  token: string;
  /** `sha256:<hex>` of the hub CA certificate's DER, printed in the join command. */
  caHash: string;
  /** Where the identity is stored. */
  store: IdentityStore;
  logger?: Logger;
  timeoutMs?: number;
  /** age identities the operator supplies (the first is registered); default: a new one. */
  ageIdentities?: string[];
}

function registerError(address: string, err: ServiceError): FlotillaError {
  const why = err.details || err.message;
  switch (err.code) {
    case grpcStatus.UNAUTHENTICATED:
    case grpcStatus.PERMISSION_DENIED:
      return new FlotillaError('unauthenticated', `hub ${address}: join refused: ${why}`, { cause: err });
    case grpcStatus.INVALID_ARGUMENT:
    case grpcStatus.ALREADY_EXISTS:
    case grpcStatus.FAILED_PRECONDITION:
      return new FlotillaError('invalid', `hub ${address}: join refused: ${why}`, { cause: err });
    default:
      return new FlotillaError('unavailable', `hub ${address}: register failed: ${why}`, { cause: err });
  }
}

/**
 * Joins the fleet: pins the hub CA by its hash, generates the agent's own ed25519 key,
 * exchanges the bootstrap token for the agent's identity (credential, NATS credentials,
 * hub bundle keys), checks that what came back is usable, and stores it. The private key
 * never leaves the agent; the hub gets its public half to verify status exports. Likewise the
 * age key that opens SOPS files: the hub gets only its recipient.
 */
export async function join(options: JoinOptions): Promise<AgentIdentity> {
  const log = options.logger ?? createLogger({ name: 'agent', level: 'silent' });
  parseHubAddress(options.hub);
  const caPem = await fetchPinnedCa(options.hub, options.caHash, { timeoutMs: options.timeoutMs });
  log.info({ hub: options.hub }, 'hub CA pinned');
  const key = generateSigningKey();
  const age = options.ageIdentities?.length ? await ageKeyOf(options.ageIdentities) : await newAgeKey();
  const client = createGrpcClient(AgentService, options.hub, hubChannelCredentials(caPem));
  let reply: RegisterResponse;
  try {
    reply = await new Promise<RegisterResponse>((resolve, reject) =>
      client.register(
        create(RegisterRequestSchema, {
          token: options.token,
          agentVersion: AGENT_VERSION,
          agentPublicKey: rawPublicKey(key.publicKey),
          ageRecipient: age.recipient,
        }),
        new Metadata(),
        { deadline: Date.now() + (options.timeoutMs ?? 30_000) },
        (err, res) =>
          err
            ? reject(registerError(options.hub, err))
            : res
              ? resolve(res)
              : reject(new Error('empty reply')),
      ),
    );
  } finally {
    client.close();
  }
  assertClusterName(reply.cluster);
  if (!reply.agentCredential)
    throw new FlotillaError('internal', `hub ${options.hub}: register returned no agent credential`);
  if (!reply.nats || reply.nats.servers.length === 0) {
    throw new FlotillaError('internal', `hub ${options.hub}: register returned no NATS servers`);
  }
  if (reply.hubKeys.length === 0)
    throw new FlotillaError('internal', `hub ${options.hub}: register returned no hub keys`);
  // Refuses a key whose id does not match it, before anything is stored.
  trustedKeys(reply.hubKeys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })));
  const identity: AgentIdentity = {
    hub: options.hub,
    caPem,
    cluster: reply.cluster,
    environment: reply.environment,
    labels: { ...reply.labels },
    agentCredential: reply.agentCredential,
    nats: {
      servers: [...reply.nats.servers],
      jwt: reply.nats.jwt,
      seed: reply.nats.seed,
      inboxPrefix: reply.nats.inboxPrefix,
    },
    hubKeys: reply.hubKeys.map((k) => ({
      keyId: k.keyId,
      publicKey: Buffer.from(k.publicKey).toString('base64'),
    })),
    agentKey: encodeAgentKey(key),
    ageIdentities: age.identities,
    ageRecipient: age.recipient,
    ageRecipientRegistered: true,
    registeredAt: new Date().toISOString(),
    ...(reply.credentialExpiresAt
      ? { credentialExpiresAt: timestampDate(reply.credentialExpiresAt).toISOString() }
      : {}),
  };
  await options.store.save(identity);
  log.info(
    { cluster: identity.cluster, environment: identity.environment, stored: options.store.location },
    'joined the fleet',
  );
  return identity;
}
