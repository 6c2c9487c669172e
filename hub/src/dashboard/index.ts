export { type FleetQuery, pageFleet, parseFleetQuery } from './fleet-query.js';
export { appliedBundle, objectDiff } from './object-diff.js';
export { createOidcLogin, type OidcGrant, type OidcOptions, parseOidcConfig } from './oidc.js';
export { createPipelineView, type PipelineStage, type PipelineStep, type PipelineView } from './pipeline.js';
export { type DashboardServices, dashboardRoutes, SESSION_COOKIE } from './routes.js';
export { createSessions, type Sessions } from './sessions.js';
