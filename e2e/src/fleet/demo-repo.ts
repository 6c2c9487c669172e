/** The source repository of the demo and the journey tests: a small real app in three environments. */

export const FLOTILLA_YAML_MIXED = `# dev and staging are directories on main; prod is a directory on branch release.
environments:
  - name: dev
    path: environments/dev
    policy: {selfHeal: true, prune: true, sync: auto}
  - name: staging
    path: environments/staging
    keep: [config.yaml]
    policy: {selfHeal: true, prune: true, sync: auto}
  - name: prod
    path: environments/prod
    branch: release
    keep: [config.yaml]
    policy: {selfHeal: true, prune: true, sync: auto}
pipeline: [dev, staging, prod]
`;

export function appFiles(
  env: string,
  options: { image?: string; replicas?: number; logLevel?: string } = {},
): Record<string, string> {
  const dir = `environments/${env}`;
  return {
    [`${dir}/namespace.yaml`]: `apiVersion: v1
kind: Namespace
metadata:
  name: shop
`,
    [`${dir}/deployment.yaml`]: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: ${options.replicas ?? 2}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: ${options.image ?? 'nginx:1.27'}
          ports:
            - containerPort: 80
          envFrom:
            - configMapRef: {name: web-config}
`,
    [`${dir}/service.yaml`]: `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
    - port: 80
      targetPort: 80
`,
    [`${dir}/config.yaml`]: `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  ENVIRONMENT: \${cluster.environment}
  CLUSTER: \${cluster.name}
  LOG_LEVEL: ${options.logLevel ?? (env === 'prod' ? 'warn' : 'debug')}
`,
  };
}

/**
 * dev → staging → prod as three directories on main, each with the app: the repository of the
 * access and dashboard tests. `approveProd` makes a promotion to prod wait for a second person.
 */
export function threeDirectoryRepoFiles(options: { approveProd?: boolean } = {}): Record<string, string> {
  const prod = options.approveProd ? ', promotion: {approve: true}' : '';
  return {
    'flotilla.yaml': `environments:
  - {name: dev, path: environments/dev}
  - {name: staging, path: environments/staging}
  - {name: prod, path: environments/prod${prod}}
pipeline: [dev, staging, prod]
`,
    ...appFiles('dev'),
    ...appFiles('staging'),
    ...appFiles('prod'),
  };
}

/** The demo's flotilla.yaml: the mixed pipeline, and a fleet-wide monitoring app on `tier=prod` clusters. */
export const FLOTILLA_YAML_DEMO = FLOTILLA_YAML_MIXED.replace(
  'pipeline:',
  `# A fleet-wide app: every cluster labelled tier=prod runs it, whatever its environment.
apps:
  - name: monitoring
    selector:
      matchLabels: {tier: prod}
pipeline:`,
);

/** The monitoring app: one directory for every environment (apps/monitoring/ENV would be one's own). */
export function monitoringFiles(): Record<string, string> {
  return {
    'apps/monitoring/namespace.yaml': `apiVersion: v1
kind: Namespace
metadata:
  name: monitoring
`,
    'apps/monitoring/agent.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: node-agent
  namespace: monitoring
data:
  CLUSTER: \${cluster.name}
  SCRAPE_INTERVAL: 30s
`,
  };
}

/** The demo's repository on `main`: flotilla.yaml, all three environments and the monitoring app. */
export function demoRepoFiles(): Record<string, string> {
  return {
    'flotilla.yaml': FLOTILLA_YAML_DEMO,
    ...appFiles('dev'),
    ...appFiles('staging'),
    ...appFiles('prod'),
    ...monitoringFiles(),
  };
}
