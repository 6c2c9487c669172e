export * from './init.js';
export * from './secrets.js';
export * from './signing-keys.js';
export * from './tls.js';
