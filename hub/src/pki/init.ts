import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadNatsIdentity, type NatsIdentity, writeNatsServerConfig } from '../nats/identity.js';
import { ensureAdminToken } from './secrets.js';
import { ensureSigningKeys, type SigningKeyRing } from './signing-keys.js';
import { ensureTls, type HubTls } from './tls.js';

/** Everything the hub keeps in its data dir, loaded (and created where missing). */
export interface HubIdentity {
  dataDir: string;
  signingKeys: SigningKeyRing;
  tls: HubTls;
  nats: NatsIdentity;
  /** Path of the nats-server config fragment. */
  natsConfigPath: string;
  adminTokenHash: string;
  /** Set only when the admin token was created by this call: print it once, never store it. */
  newAdminToken?: string;
}

/**
 * Creates the hub's data dir idempotently: signing key, TLS CA and server certificate,
 * admin token, NATS operator and accounts, and the nats-server config fragment. Run by
 * `flotilla hub init` and again at every `hub start`; a second run changes nothing.
 */
export async function initDataDir(
  dataDir: string,
  options: { tlsSans?: string[] } = {},
): Promise<HubIdentity> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { ring } = ensureSigningKeys(dir);
  const tls = await ensureTls(dir, options.tlsSans ?? []);
  const admin = ensureAdminToken(dir);
  const nats = await loadNatsIdentity(dir);
  const natsConfigPath = writeNatsServerConfig(dir, nats);
  return {
    dataDir: dir,
    signingKeys: ring,
    tls,
    nats,
    natsConfigPath,
    adminTokenHash: admin.hash,
    ...(admin.created ? { newAdminToken: admin.created } : {}),
  };
}
