export { diffEnvironments, type FileDiff, redactSecrets } from './env-diff.js';
export { evaluateGates, type GateInput, type GateResult, type SourceClusterState } from './gates.js';
export { promoteTree, revertCommit } from './git/index.js';
export { createPromotionLog, type PromotionLog, type PromotionRecord } from './promotion-log.js';
export {
  createPromotionService,
  type EnvDiff,
  type PromoteRequest,
  type PromoteResult,
  PromotionRefusedError,
  type PromotionService,
  type RollbackResult,
} from './promotion-service.js';
export { promotionRoutes } from './routes.js';
