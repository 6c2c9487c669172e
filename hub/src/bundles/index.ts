export * from './publish-cluster.js';
