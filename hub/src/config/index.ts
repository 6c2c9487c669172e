export {
  type EnvironmentConfig,
  FLEET_CONFIG_FILE,
  type FleetConfig,
  parseFleetConfig,
} from './fleet-config.js';
export { loadFleetConfig } from './load.js';
export {
  DEFAULT_MAX_PRUNE,
  DEFAULT_ROLLOUT,
  type LabelSelector,
  type RolloutConfig,
  selectorMatches,
  selectorText,
  type WaveConfig,
  type WindowConfig,
} from './rollout.js';
export {
  type AppConfig,
  appsOfEnvironment,
  selectApps,
  selectTarget,
  type TargetConfig,
} from './targets.js';
