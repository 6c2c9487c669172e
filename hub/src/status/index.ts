export * from './fleet-view.js';
export * from './import.js';
export * from './ingest.js';
