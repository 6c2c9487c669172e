import { RenderError } from './render-error.js';

/** What a cluster contributes to its render: `${cluster.name}`, `${cluster.environment}`, `${cluster.labels.KEY}`. */
export interface ClusterVars {
  name: string;
  environment: string;
  labels: Record<string, string>;
}

const VARIABLE = /\$\{\s*(cluster(?:\.[^}\s]*)?)\s*\}/g;

/**
 * Replaces `${cluster.…}` references in `text`. Other `${…}` forms are left alone (they are
 * common in shell snippets inside ConfigMaps); an unknown `cluster.` variable is a
 * RenderError naming the variable, the file and the line.
 */
export function substituteClusterVars(text: string, vars: ClusterVars, file: string): string {
  return text.replace(VARIABLE, (_match, name: string, offset: number) => {
    const value = lookup(name, vars);
    if (value === undefined) {
      const line = text.slice(0, offset).split('\n').length;
      throw new RenderError(file, `unknown variable \${${name}}`, { line });
    }
    return value;
  });
}

function lookup(name: string, vars: ClusterVars): string | undefined {
  if (name === 'cluster.name') return vars.name;
  if (name === 'cluster.environment') return vars.environment;
  if (name.startsWith('cluster.labels.')) {
    const key = name.slice('cluster.labels.'.length);
    return Object.hasOwn(vars.labels, key) ? vars.labels[key] : undefined;
  }
  return undefined;
}
