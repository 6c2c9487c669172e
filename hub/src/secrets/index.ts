/** Secrets on the hub: how their values are shown (one policy), SOPS recipients, plain Secret warnings, the admin API. */
export { plainSecretWarnings } from './plain-secrets.js';
export {
  type ClusterRecipient,
  createRecipientStore,
  type EnvironmentRecipients,
  type RecipientStore,
  type RecipientStoreOptions,
} from './recipients.js';
export { secretRoutes } from './routes.js';
export {
  createSecretValues,
  REDACTED,
  type SecretValues,
  secretValuesShownTo,
  seesSecretHashes,
  withSecretValuesShown,
} from './secret-values.js';
