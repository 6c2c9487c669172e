export { type KubeApi, PatchType } from './api.js';
export { isFailingImage, NODE_NAME } from './controllers.js';
export { KubeStatusError } from './errors.js';
export { KUBE_BIN, type KubeProcess, type KubeProcessOptions, startKubeProcess } from './process.js';
export {
  DEFAULT_KUBE_SERVER_OPTIONS,
  type KubeServer,
  type KubeServerOptions,
  kubeconfigFor,
  startKubeServer,
  tokenFor,
} from './server.js';
