export * from './cluster-service.js';
