export { DEFAULT_RENDER_LIMITS, type RenderLimits } from './limits.js';
export { RenderError } from './render-error.js';
export {
  createRenderer,
  type RenderedUnit,
  type Renderer,
  type RendererOptions,
  type RenderPlan,
  type RenderResult,
  SOURCE_ANNOTATION,
  type Targeting,
} from './renderer.js';
export { type ClusterVars, substituteClusterVars } from './substitute.js';
