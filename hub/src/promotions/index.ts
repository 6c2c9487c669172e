export * from './promotion-log.js';
