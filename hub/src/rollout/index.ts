export { blastRadiusHold, countPrunes } from './blast-radius.js';
export { createPauses, type Pause, type Pauses, type PauseTarget, pauseText } from './pause.js';
export {
  createRolloutService,
  type RolloutService,
  type RolloutStatus,
  type RolloutWaveStatus,
} from './rollout-service.js';
export { rolloutRoutes } from './routes.js';
export { assignWaves, planRollout, type RolloutRecord, type Wave } from './waves.js';
