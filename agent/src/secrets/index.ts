/** SOPS Secrets in the agent: its age key, and decryption just before apply. */
export { type AgeKey, ageKeyOf, newAgeKey, readAgeKeyFile } from './age-identity.js';
export { createSopsDecoder } from './sops-decoder.js';
