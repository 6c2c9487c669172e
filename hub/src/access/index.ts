export * from './access.js';
export * from './oidc.js';
export * from './redact.js';
export * from './roles.js';
export * from './routes.js';
export * from './token-store.js';
