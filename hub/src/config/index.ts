export {
  type EnvironmentConfig,
  FLEET_CONFIG_FILE,
  type FleetConfig,
  parseFleetConfig,
} from './fleet-config.js';
export { loadFleetConfig } from './load.js';
export {
  type AppConfig,
  appsOfEnvironment,
  selectApps,
  selectTarget,
  type TargetConfig,
} from './targets.js';
