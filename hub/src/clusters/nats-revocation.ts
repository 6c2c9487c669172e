import type { Logger } from '@flotilla/shared';
import { revokeNatsUser } from '../nats/identity.js';
import type { ClusterServiceOptions } from './types.js';

/** Revokes agents' NATS users: persisted in the account JWT, then pushed to the servers. */
export interface NatsRevocation {
  /** Records the users as revoked; returns the re-signed account JWT to push, if any user was given. */
  revoke(users: string[]): Promise<string | undefined>;
  /** Pushes an account JWT; a failure is logged and returned (it is pushed again on reconnect or at start). */
  push(accountJwt: string, cluster: string): Promise<unknown | undefined>;
  /** `revoke` then `push`. */
  revokeAndPush(users: string[], cluster: string): Promise<void>;
}

export function createNatsRevocation(nats: ClusterServiceOptions['nats'], logger: Logger): NatsRevocation {
  const revoke = async (users: string[]) => {
    let accountJwt: string | undefined;
    for (const u of users) accountJwt = await revokeNatsUser(nats.dataDir, nats.identity, u);
    return accountJwt;
  };
  const push = async (accountJwt: string, cluster: string) => {
    try {
      await nats.updateAccount(accountJwt);
      return undefined;
    } catch (err) {
      logger.warn(
        { cluster, err: String(err) },
        'nats revocation not pushed; it is pushed when NATS is back (reconnect) or at next start',
      );
      return err;
    }
  };
  return {
    revoke,
    push,
    async revokeAndPush(users, cluster) {
      const accountJwt = await revoke(users);
      if (accountJwt) await push(accountJwt, cluster);
    },
  };
}
