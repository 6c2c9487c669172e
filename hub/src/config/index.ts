export {
  type EnvironmentConfig,
  FLEET_CONFIG_FILE,
  type FleetConfig,
  parseFleetConfig,
} from './fleet-config.js';
export { loadFleetConfig } from './load.js';
