export * from './http-errors.js';
export * from './router.js';
export * from './routes.js';
export * from './server.js';
