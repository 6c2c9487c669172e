export { bin, type CliResult, ROOT, runCli, runJson } from './cli.js';
export {
  appFiles,
  demoRepoFiles,
  FLOTILLA_YAML_DEMO,
  FLOTILLA_YAML_MIXED,
  monitoringFiles,
} from './demo-repo.js';
export {
  type Fleet,
  type FleetCluster,
  type FleetClusterSpec,
  type FleetOptions,
  type FleetStatusRow,
  startFleet,
} from './fleet.js';
