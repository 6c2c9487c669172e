/** The hub's public API: start a hub, or compose its services (promotion, journeys) on top. */
export * from './api/index.js';
export * from './audit/index.js';
export * from './bundles/index.js';
export * from './clusters/index.js';
export * from './db/index.js';
export * from './grpc/index.js';
export * from './hub.js';
export * from './manual-sync/index.js';
export * from './metrics/index.js';
export * from './nats/index.js';
export * from './pki/index.js';
export * from './promotions/index.js';
export * from './status/index.js';
export * from './sync-loop/index.js';
export { parseDuration } from './util/duration.js';
