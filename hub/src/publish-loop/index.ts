export * from './publish-loop.js';
export * from './render-state.js';
