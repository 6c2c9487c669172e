import type { InvalidError } from '@flotilla/shared';
import { isMap, isScalar, isSeq, type YAMLMap } from 'yaml';
import {
  checkRequirement,
  type LabelSelector,
  type LabelSelectorRequirement,
  labelKeyProblem,
  labelValueProblem,
  matchesSelector,
  parseSelector,
} from '../clusters/selector.js';

/**
 * Targeting in flotilla.yaml: label-selected groups within an environment (`targets`, first
 * match wins) and fleet-wide apps (`apps`) rendered into every cluster their selector (and
 * environment list) matches. Kept apart from fleet-config.ts, which calls in here for these two
 * fields only.
 */

/** A group of an environment's clusters, chosen by label. */
export interface TargetConfig {
  /** DNS-1123 label, unique within its environment. */
  name: string;
  selector: LabelSelector;
  /**
   * Directory rendered instead of the environment's, relative to the environment's path (a
   * kustomization there can build on the environment's base). Undefined: the environment's
   * directory itself, with `values` added.
   */
  path?: string;
  /** Extra Helm values files, relative to the rendered chart directory, after `values-<env>.yaml`. */
  values: string[];
}

/** Content rendered into every cluster whose labels (and environment) it selects. */
export interface AppConfig {
  /** DNS-1123 label, unique in the file: the source objects record (`app/NAME`). */
  name: string;
  /** Repository directory; `PATH/<environment>` is rendered for an environment when it exists. Default `apps/NAME`. */
  path: string;
  selector: LabelSelector;
  /** Only clusters of these environments; undefined: every environment. */
  environments?: string[];
}

/** How flotilla.yaml's parser reports a field at fault: file, line of `node`, the field path. */
export type Fail = (node: unknown, field: string, message: string) => never;

/** Checks a repository-relative path; returns why it is unacceptable, or undefined. */
export type PathCheck = (path: string) => string | undefined;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const keyOf = (pair: { key: unknown }): string =>
  String((pair.key as { value?: unknown })?.value ?? pair.key);

function checkFields(map: YAMLMap, at: string, known: string[], fail: Fail): void {
  for (const pair of map.items)
    if (!known.includes(keyOf(pair))) fail(pair.key, `${at}.${keyOf(pair)}`, 'is not a known field');
}

function scalarString(map: YAMLMap, key: string): { node: unknown; value: unknown } {
  const node = map.get(key, true);
  return { node: node ?? map, value: (node as { value?: unknown } | undefined)?.value };
}

/**
 * A label selector as Kubernetes writes it — `{matchLabels: {…}, matchExpressions: [{key,
 * operator, values}]}` — or kubectl's string form (`region in (eu),gpu=true`). Every error
 * names the line and the field.
 */
export function parseSelectorNode(node: unknown, at: string, fail: Fail): LabelSelector {
  if (isScalar(node) && typeof node.value === 'string') {
    try {
      return parseSelector(node.value, at);
    } catch (err) {
      return fail(node, at, (err as Error).message.replace(`${at}: `, ''));
    }
  }
  if (!isMap(node))
    return fail(node, at, 'must be a label selector: {matchLabels, matchExpressions} or "k=v,k2 in (a,b)"');
  checkFields(node, at, ['matchLabels', 'matchExpressions'], fail);
  const selector: LabelSelector = {};
  const labelsNode = node.get('matchLabels', true);
  if (labelsNode !== undefined && labelsNode !== null) {
    if (!isMap(labelsNode)) return fail(labelsNode, `${at}.matchLabels`, 'must be a mapping of label: value');
    const matchLabels: Record<string, string> = {};
    for (const pair of labelsNode.items) {
      const key = keyOf(pair);
      const field = `${at}.matchLabels.${key}`;
      const kp = labelKeyProblem(key);
      if (kp) fail(pair.key, field, kp);
      const value = (pair.value as { value?: unknown } | null)?.value;
      if (typeof value !== 'string')
        fail(pair.value ?? pair.key, field, `must be a string (quote it: "${String(value)}")`);
      const vp = labelValueProblem(value as string);
      if (vp) fail(pair.value, field, vp);
      matchLabels[key] = value as string;
    }
    selector.matchLabels = matchLabels;
  }
  const exprNode = node.get('matchExpressions', true);
  if (exprNode !== undefined && exprNode !== null) {
    if (!isSeq(exprNode))
      return fail(exprNode, `${at}.matchExpressions`, 'must be a list of {key, operator, values}');
    selector.matchExpressions = exprNode.items.map((item, i): LabelSelectorRequirement => {
      const here = `${at}.matchExpressions[${i}]`;
      if (!isMap(item)) return fail(item, here, 'must be a mapping with key, operator and values');
      checkFields(item, here, ['key', 'operator', 'values'], fail);
      const key = scalarString(item, 'key');
      const op = scalarString(item, 'operator');
      if (typeof key.value !== 'string') fail(key.node, `${here}.key`, 'is required (a label key)');
      if (typeof op.value !== 'string')
        fail(op.node, `${here}.operator`, 'is required (In, NotIn, Exists or DoesNotExist)');
      const valuesNode = item.get('values', true);
      let values: string[] | undefined;
      if (valuesNode !== undefined && valuesNode !== null) {
        if (!isSeq(valuesNode)) return fail(valuesNode, `${here}.values`, 'must be a list of strings');
        values = valuesNode.items.map((v, j) => {
          const value = (v as { value?: unknown }).value;
          if (typeof value !== 'string')
            fail(v, `${here}.values[${j}]`, `must be a string (quote it: "${String(value)}")`);
          return value as string;
        });
      }
      try {
        return checkRequirement(
          {
            key: key.value as string,
            operator: op.value as LabelSelectorRequirement['operator'],
            ...(values ? { values } : {}),
          },
          here,
        );
      } catch (err) {
        const field = (err as InvalidError).field ?? here;
        const where = field.endsWith('.key')
          ? key.node
          : field.endsWith('.operator')
            ? op.node
            : (valuesNode ?? item);
        return fail(where, field, (err as Error).message.replace(`${field}: `, ''));
      }
    });
  }
  return selector;
}

/** `environments[i].targets`: a list of `{name, selector, path?, values?}`. */
export function parseTargets(node: unknown, at: string, fail: Fail, pathProblem: PathCheck): TargetConfig[] {
  if (!isSeq(node)) return fail(node, at, 'must be a list of {name, selector, path, values}');
  const targets: TargetConfig[] = [];
  for (const [i, item] of node.items.entries()) {
    const here = `${at}[${i}]`;
    if (!isMap(item)) return fail(item, here, 'must be a mapping with name and selector');
    checkFields(item, here, ['name', 'selector', 'path', 'values'], fail);
    const name = scalarString(item, 'name');
    if (typeof name.value !== 'string' || !DNS1123_LABEL.test(name.value))
      fail(name.node, `${here}.name`, 'must be a DNS-1123 label (lowercase letters, digits, -; at most 63)');
    if (targets.some((t) => t.name === name.value))
      fail(name.node, `${here}.name`, `duplicates "${name.value}"`);
    const selectorNode = item.get('selector', true);
    if (selectorNode === undefined) fail(item, `${here}.selector`, 'is required (a label selector)');
    const target: TargetConfig = {
      name: name.value as string,
      selector: parseSelectorNode(selectorNode, `${here}.selector`, fail),
      values: [],
    };
    const path = scalarString(item, 'path');
    if (item.has('path')) {
      if (typeof path.value !== 'string') fail(path.node, `${here}.path`, 'must be a directory');
      const problem = pathProblem(path.value as string);
      if (problem) fail(path.node, `${here}.path`, `${problem} (it is relative to the environment's path)`);
      target.path = (path.value as string).replace(/\/+$/, '');
    }
    const valuesNode = item.get('values', true);
    if (valuesNode !== undefined && valuesNode !== null) {
      if (!isSeq(valuesNode)) return fail(valuesNode, `${here}.values`, 'must be a list of values files');
      for (const [j, v] of valuesNode.items.entries()) {
        const value = (v as { value?: unknown }).value;
        const problem = typeof value === 'string' ? pathProblem(value) : 'must be a file name';
        if (problem) fail(v, `${here}.values[${j}]`, problem);
        target.values.push(value as string);
      }
    }
    if (target.path === undefined && target.values.length === 0)
      fail(item, here, 'needs a path (a directory to render) or values (Helm values files to add)');
    targets.push(target);
  }
  return targets;
}

/** The root `apps` list: `{name, selector, path?, environments?}`, checked against the environments. */
export function parseApps(
  node: unknown,
  environments: string[],
  fail: Fail,
  pathProblem: PathCheck,
): AppConfig[] {
  if (!isSeq(node)) return fail(node, 'apps', 'must be a list of {name, selector, path, environments}');
  const apps: AppConfig[] = [];
  for (const [i, item] of node.items.entries()) {
    const here = `apps[${i}]`;
    if (!isMap(item)) return fail(item, here, 'must be a mapping with name and selector');
    checkFields(item, here, ['name', 'selector', 'path', 'environments'], fail);
    const name = scalarString(item, 'name');
    if (typeof name.value !== 'string' || !DNS1123_LABEL.test(name.value))
      fail(name.node, `${here}.name`, 'must be a DNS-1123 label (lowercase letters, digits, -; at most 63)');
    if (apps.some((a) => a.name === name.value))
      fail(name.node, `${here}.name`, `duplicates "${name.value}"`);
    const selectorNode = item.get('selector', true);
    if (selectorNode === undefined)
      fail(item, `${here}.selector`, 'is required (a label selector; {} selects every cluster)');
    const path = scalarString(item, 'path');
    let dir = `apps/${name.value}`;
    if (item.has('path')) {
      if (typeof path.value !== 'string') fail(path.node, `${here}.path`, 'must be a directory');
      const problem = pathProblem(path.value as string);
      if (problem) fail(path.node, `${here}.path`, problem);
      dir = (path.value as string).replace(/\/+$/, '');
    }
    const app: AppConfig = {
      name: name.value as string,
      path: dir,
      selector: parseSelectorNode(selectorNode, `${here}.selector`, fail),
    };
    const envsNode = item.get('environments', true);
    if (envsNode !== undefined && envsNode !== null) {
      if (!isSeq(envsNode))
        return fail(envsNode, `${here}.environments`, 'must be a list of environment names');
      app.environments = envsNode.items.map((e, j) => {
        const value = (e as { value?: unknown }).value;
        if (typeof value !== 'string' || !environments.includes(value))
          fail(e, `${here}.environments[${j}]`, `names no environment (${environments.join(', ')})`);
        return value as string;
      });
    }
    apps.push(app);
  }
  return apps;
}

/** A cluster as targeting sees it. */
export interface TargetedCluster {
  environment: string;
  labels: Readonly<Record<string, string>>;
}

/** The environment's first target whose selector matches the cluster, if any (first match wins). */
export function selectTarget(
  targets: readonly TargetConfig[] | undefined,
  cluster: TargetedCluster,
): TargetConfig | undefined {
  return targets?.find((t) => matchesSelector(t.selector, cluster.labels));
}

/** The apps a cluster runs: its environment is listed (or none are) and its labels match. */
export function selectApps(apps: readonly AppConfig[] | undefined, cluster: TargetedCluster): AppConfig[] {
  return (apps ?? []).filter(
    (a) =>
      (!a.environments || a.environments.includes(cluster.environment)) &&
      matchesSelector(a.selector, cluster.labels),
  );
}

/** The apps that may reach an environment's clusters (by their environment list only). */
export function appsOfEnvironment(apps: readonly AppConfig[] | undefined, environment: string): AppConfig[] {
  return (apps ?? []).filter((a) => !a.environments || a.environments.includes(environment));
}
