export * from './limits.js';
export * from './routes.js';
export * from './verify.js';
