export * from './agent-streams.js';
export * from './errors.js';
export * from './server.js';
