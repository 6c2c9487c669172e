import { InvalidError } from '@flotilla/shared';
import type { Route } from '../api/router.js';
import type { RecipientStore } from './recipients.js';

/**
 * The admin API of SOPS secrets: only public keys. Encryption and rekeying happen in the
 * `flotilla` CLI on the user's machine, so no Secret value is ever sent to the hub.
 */
export function secretRoutes(recipients: RecipientStore): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/secrets/recipients',
      // Public keys only: what anyone encrypting for the fleet needs.
      permission: 'read',
      async handle(req) {
        const envs = req.query
          .getAll('env')
          .flatMap((e) => e.split(','))
          .filter(Boolean);
        if (envs.length === 0) throw new InvalidError('env', 'name at least one environment (?env=dev)');
        return { json: await recipients.forEnvironments(envs) };
      },
    },
  ];
}
