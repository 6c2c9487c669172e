import {
  DEFAULT_SYNC_POLICY,
  type IgnoreDifferences,
  InvalidError,
  parseJsonPointer,
  type SyncPolicy,
} from '@flotilla/shared';
import { isMap, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { parseRolloutConfig, type RolloutConfig } from './rollout.js';
import { type AppConfig, parseApps, parseTargets, type TargetConfig } from './targets.js';

/** The file at the root of the source's default branch that declares environments and the pipeline. */
export const FLEET_CONFIG_FILE = 'flotilla.yaml';

/** One environment of flotilla.yaml: where its desired state lives and how it is promoted and synced. */
export interface EnvironmentConfig {
  /** DNS-1123 label. */
  name: string;
  /** Directory in the repository: relative, no `..`, no leading `/`, no trailing `/`. */
  path: string;
  /** undefined = the source's default branch. */
  branch?: string;
  /** Globs relative to `path` that promotion never overwrites (the environment's own values, patches). */
  keep: string[];
  /** Gates beyond "FROM is Synced and Healthy". `soak` is written as a duration (`30s`, `10m`, `1h30m`) or a number of seconds. */
  promotion: { soakMs: number; approve: boolean };
  policy: SyncPolicy;
  /** Label-selected groups of its clusters, first match wins (targets.ts); absent when none are declared. */
  targets?: TargetConfig[];
  /** Waves, blast radius and maintenance windows (config/rollout.ts); absent when flotilla.yaml has none (defaults apply). */
  rollout?: RolloutConfig;
}

export interface FleetConfig {
  environments: EnvironmentConfig[];
  /** Environment names in promotion order. */
  pipeline: string[];
  /** Fleet-wide apps, rendered into every cluster they select (targets.ts); absent when none are declared. */
  apps?: AppConfig[];
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const BRANCH = /^(?!\/)(?!.*\/\/)(?!.*\.\.)(?!.*@\{)(?!.*\.lock$)(?!.*\/$)[^\0-\x20~^:?*[\\\x7f]+$/;

/**
 * Parses and validates flotilla.yaml. Every error is an InvalidError whose message names the
 * file, the line and the field (`flotilla.yaml:7: environments[1].path: …`), so a user can fix
 * the repository without reading hub logs.
 */
export function parseFleetConfig(text: string, file = FLEET_CONFIG_FILE): FleetConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (node: unknown): number => {
    const range = (node as Node | undefined)?.range;
    return range ? lines.linePos(range[0]).line : 1;
  };
  const fail = (node: unknown, field: string, message: string): never => {
    throw new InvalidError(`${file}:${lineOf(node)}: ${field}`, message);
  };
  const first = doc.errors[0];
  if (first) {
    const line = first.linePos?.[0]?.line ?? 1;
    throw new InvalidError(`${file}:${line}`, `is not valid YAML (${first.code})`);
  }
  const root = doc.contents;
  if (!isMap(root)) return fail(root, '(root)', 'must be a mapping with environments and pipeline');
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
    if (key !== 'environments' && key !== 'pipeline' && key !== 'apps')
      fail(pair.key, key, 'is not a known field');
  }

  const envNode = root.get('environments', true);
  if (!isSeq(envNode) || envNode.items.length === 0)
    return fail(envNode ?? root, 'environments', 'must be a non-empty list');
  const environments: EnvironmentConfig[] = [];
  for (const [i, item] of envNode.items.entries()) {
    const at = `environments[${i}]`;
    if (!isMap(item)) return fail(item, at, 'must be a mapping');
    const known = new Set(['name', 'path', 'branch', 'keep', 'promotion', 'policy', 'targets', 'rollout']);
    for (const pair of item.items) {
      const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
      if (!known.has(key)) fail(pair.key, `${at}.${key}`, 'is not a known field');
    }
    const scalar = (key: string): { node: unknown; value: unknown } => {
      const node = item.get(key, true);
      return { node: node ?? item, value: (node as { value?: unknown } | undefined)?.value };
    };
    const name = scalar('name');
    if (typeof name.value !== 'string' || !DNS1123_LABEL.test(name.value))
      fail(name.node, `${at}.name`, 'must be a DNS-1123 label (lowercase letters, digits, -; at most 63)');
    const envName = name.value as string;
    if (environments.some((e) => e.name === envName))
      fail(name.node, `${at}.name`, `duplicates "${envName}"`);

    const path = scalar('path');
    if (typeof path.value !== 'string')
      return fail(path.node, `${at}.path`, 'is required (a directory in the repository)');
    const problem = pathProblem(path.value);
    if (problem) fail(path.node, `${at}.path`, problem);

    const branchNode = item.get('branch', true);
    let branch: string | undefined;
    if (branchNode !== undefined) {
      const value = (branchNode as { value?: unknown }).value;
      if (typeof value !== 'string' || !BRANCH.test(value))
        fail(branchNode, `${at}.branch`, 'must be a valid git branch name');
      branch = value as string;
    }

    const keepNode = item.get('keep', true);
    const keep: string[] = [];
    if (keepNode !== undefined) {
      if (!isSeq(keepNode)) return fail(keepNode, `${at}.keep`, 'must be a list of globs');
      for (const [j, k] of keepNode.items.entries()) {
        const value = (k as { value?: unknown }).value;
        if (typeof value !== 'string' || !value)
          return fail(k, `${at}.keep[${j}]`, 'must be a non-empty glob');
        const kp = pathProblem(value.replace(/\*+/g, 'x'));
        if (kp) fail(k, `${at}.keep[${j}]`, kp);
        keep.push(value);
      }
    }

    const promotion = { soakMs: 0, approve: false };
    const promoNode = item.get('promotion', true);
    if (promoNode !== undefined) {
      if (!isMap(promoNode)) return fail(promoNode, `${at}.promotion`, 'must be a mapping');
      for (const pair of promoNode.items) {
        const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
        const value = (pair.value as { value?: unknown } | null)?.value;
        const field = `${at}.promotion.${key}`;
        if (key === 'soak') {
          const ms = parseDuration(value);
          if (ms === undefined)
            fail(pair.value ?? pair.key, field, 'must be a duration such as 30s, 10m or 1h');
          promotion.soakMs = ms as number;
        } else if (key === 'approve') {
          if (typeof value !== 'boolean') fail(pair.value ?? pair.key, field, 'must be true or false');
          promotion.approve = value as boolean;
        } else fail(pair.key, field, 'is not a known field');
      }
    }

    const policy: SyncPolicy = { ...DEFAULT_SYNC_POLICY };
    const policyNode = item.get('policy', true);
    if (policyNode !== undefined) {
      if (!isMap(policyNode)) return fail(policyNode, `${at}.policy`, 'must be a mapping');
      for (const pair of policyNode.items) {
        const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
        const value = (pair.value as { value?: unknown } | null)?.value;
        const field = `${at}.policy.${key}`;
        const where = pair.value ?? pair.key;
        if (key === 'selfHeal' || key === 'prune' || key === 'allowEmpty') {
          if (typeof value !== 'boolean') fail(where, field, 'must be true or false');
          policy[key] = value as boolean;
        } else if (key === 'sync') {
          if (value !== 'auto' && value !== 'manual') fail(where, field, 'must be auto or manual');
          policy.sync = value as 'auto' | 'manual';
        } else if (key === 'adopt') {
          if (typeof value !== 'boolean') fail(where, field, 'must be true or false');
          // Only written when set, so that bundles of environments without it keep their digest.
          if (value === true) policy.adopt = true;
        } else if (key === 'ignoreDifferences') {
          const rules = parseIgnoreDifferences(pair.value, field, fail);
          if (rules.length > 0) policy.ignoreDifferences = rules;
        } else fail(pair.key, field, 'is not a known field');
      }
    }

    const targetsNode = item.get('targets', true);
    const rolloutNode = item.get('rollout', true);
    environments.push({
      name: envName,
      path: path.value.replace(/\/+$/, ''),
      branch,
      keep,
      promotion,
      policy,
      ...(targetsNode ? { targets: parseTargets(targetsNode, `${at}.targets`, fail, pathProblem) } : {}),
      ...(rolloutNode === undefined
        ? {}
        : { rollout: parseRolloutConfig(rolloutNode, `${at}.rollout`, fail, parseDuration) }),
    });
  }

  const pipeNode = root.get('pipeline', true);
  const pipeline: string[] = [];
  if (pipeNode !== undefined) {
    if (!isSeq(pipeNode)) return fail(pipeNode, 'pipeline', 'must be a list of environment names');
    for (const [i, p] of pipeNode.items.entries()) {
      const value = (p as { value?: unknown }).value;
      if (typeof value !== 'string' || !environments.some((e) => e.name === value))
        fail(p, `pipeline[${i}]`, `names no environment (${environments.map((e) => e.name).join(', ')})`);
      if (pipeline.includes(value as string)) fail(p, `pipeline[${i}]`, `repeats "${value}"`);
      pipeline.push(value as string);
    }
  }
  const appsNode = root.get('apps', true);
  const apps = appsNode
    ? parseApps(
        appsNode,
        environments.map((e) => e.name),
        fail,
        pathProblem,
      )
    : undefined;
  return { environments, pipeline, ...(apps ? { apps } : {}) };
}

const IGNORE_RULE_FIELDS = new Set(['group', 'kind', 'namespace', 'name', 'jsonPointers']);

/**
 * `policy.ignoreDifferences`: a list of `{group?, kind, namespace?, name?, jsonPointers}` (as Argo
 * CD's), each pointer checked with the parser the agent uses, so the agent never meets one it
 * cannot read.
 */
function parseIgnoreDifferences(
  node: unknown,
  at: string,
  fail: (node: unknown, field: string, message: string) => never,
): IgnoreDifferences[] {
  if (!isSeq(node)) return fail(node, at, 'must be a list of {group, kind, name, jsonPointers}');
  return node.items.map((item, i) => {
    const here = `${at}[${i}]`;
    if (!isMap(item)) return fail(item, here, 'must be a mapping with kind and jsonPointers');
    const rule: IgnoreDifferences = { kind: '', jsonPointers: [] };
    for (const pair of item.items) {
      const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
      const field = `${here}.${key}`;
      const where = pair.value ?? pair.key;
      if (!IGNORE_RULE_FIELDS.has(key)) fail(pair.key, field, 'is not a known field');
      if (key === 'jsonPointers') {
        if (!isSeq(pair.value) || pair.value.items.length === 0)
          fail(where, field, 'must be a non-empty list of JSON pointers such as /spec/replicas');
        for (const [j, p] of (pair.value as { items: unknown[] }).items.entries()) {
          const pointer = (p as { value?: unknown }).value;
          try {
            parseJsonPointer(pointer as string);
          } catch (err) {
            fail(p, `${field}[${j}]`, (err as Error).message);
          }
          rule.jsonPointers.push(pointer as string);
        }
        continue;
      }
      const value = (pair.value as { value?: unknown } | null)?.value;
      if (typeof value !== 'string' || (key === 'kind' && !value)) fail(where, field, 'must be a string');
      rule[key as 'group' | 'kind' | 'namespace' | 'name'] = value as string;
    }
    if (!rule.kind) fail(item, `${here}.kind`, 'is required');
    if (rule.jsonPointers.length === 0) fail(item, `${here}.jsonPointers`, 'is required');
    return rule;
  });
}

/** Why a repository-relative path is unacceptable, or undefined if it is fine. */
export function pathProblem(path: string): string | undefined {
  if (!path) return 'must not be empty';
  if (path.startsWith('/')) return 'must be relative to the repository root (no leading /)';
  if (path.includes('\\') || path.includes('\0')) return 'must use / separators';
  const parts = path.replace(/\/+$/, '').split('/');
  if (parts.some((p) => p === '..')) return 'must not contain ..';
  if (parts.some((p) => p === '.git')) return 'must not touch .git';
  if (parts.some((p) => p === '' || p === '.')) return 'must be a plain path (no empty or . segments)';
  return undefined;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value * 1000;
  if (typeof value !== 'string') return undefined;
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value) return undefined;
  return parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] as string] as number), 0);
}
