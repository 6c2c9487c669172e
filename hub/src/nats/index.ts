export * from './bus.js';
export * from './identity.js';
