/**
 * SOPS documents with age recipients: decrypt (agent), encrypt and rekey (the `flotilla`
 * CLI, on the user's machine). A subpath of its own so that what does not need age does not
 * load it.
 */
export * from './age-keys.js';
export * from './sops.js';
