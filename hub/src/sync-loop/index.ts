export * from './render-state.js';
export * from './sync-loop.js';
