import type { EnvironmentConfig, FleetConfig } from '../config/index.js';
import type { GitSource } from '../source/index.js';

/** One app's directory that a promotion carries from FROM to TO, as the environment's own. */
export interface AppPromotionPath {
  app: string;
  /** Repository directory at FROM's revision. */
  from: string;
  /** Repository directory on TO's branch. */
  to: string;
  /** Globs relative to the directory that TO keeps as they are. */
  keep: string[];
}

/**
 * The apps' directories `promote FROM TO` moves with the environment's, by the rule an app's
 * content follows: an app that reaches both environments and has `APP/FROM` at FROM's revision
 * gets it copied to `APP/TO` (TO's `keep` globs apply there as in TO's directory); an app
 * rendered from its shared `APP` directory needs nothing when both environments read one
 * branch, and gets that directory copied when they read two, leaving every environment's own
 * subdirectory on TO as it is.
 */
export async function appPromotionPaths(
  source: GitSource,
  config: FleetConfig,
  from: EnvironmentConfig,
  to: EnvironmentConfig,
  fromCommit: string,
  sameBranch: boolean,
): Promise<AppPromotionPath[]> {
  const reaches = (envs: string[] | undefined, env: string) => !envs || envs.includes(env);
  const paths: AppPromotionPath[] = [];
  for (const app of config.apps ?? []) {
    if (!reaches(app.environments, from.name) || !reaches(app.environments, to.name)) continue;
    const own = `${app.path}/${from.name}`;
    if (await source.treeId(fromCommit, own)) {
      paths.push({ app: app.name, from: own, to: `${app.path}/${to.name}`, keep: to.keep });
      continue;
    }
    if (sameBranch || !(await source.treeId(fromCommit, app.path))) continue;
    paths.push({
      app: app.name,
      from: app.path,
      to: app.path,
      keep: config.environments.map((e) => e.name),
    });
  }
  return paths;
}
