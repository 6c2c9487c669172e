export * from './manual-sync.js';
