/** SOPS secrets on the hub: agents' age recipients, plain Secret warnings, the admin API. */
export { plainSecretWarnings } from './plain-secrets.js';
export {
  type ClusterRecipient,
  createRecipientStore,
  type EnvironmentRecipients,
  type RecipientStore,
  type RecipientStoreOptions,
} from './recipients.js';
export { secretRoutes } from './routes.js';
