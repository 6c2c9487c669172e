export { type DashboardServices, dashboardRoutes, SESSION_COOKIE } from './routes.js';
export { createSessions, type Sessions } from './sessions.js';
