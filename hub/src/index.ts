/** The hub's public entry point: start a hub (the CLI's `hub start` and the journeys use it). */
export * from './hub.js';
