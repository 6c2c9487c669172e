export {
  type ChartFiles,
  type ChartRepository,
  DOCKER_REGISTRY_BIN,
  helmBinary,
  type OciRegistry,
  startChartRepository,
  startOciRegistry,
  writeChart,
} from './charts.js';
export { eventually } from './eventually.js';
export { freePort } from './free-port.js';
export {
  type GitServer,
  type GitServerOptions,
  type GitWorkdir,
  startGitServer,
  writeFiles,
} from './git-server.js';
export {
  type LeafNatsServer,
  NATS_SERVER_BIN,
  type NatsServer,
  type NatsServerOptions,
  startLeafNatsServer,
  startNatsServer,
} from './nats.js';
export {
  type NatsCluster,
  type NatsClusterNode,
  type NatsClusterOptions,
  startNatsCluster,
} from './nats-cluster.js';
export { type PostgresServer, postgresBinDir, startPostgresServer } from './postgres.js';
export { ManagedProcess, type StartOptions, startProcess } from './process.js';
export { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
