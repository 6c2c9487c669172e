import { InvalidError } from '@flotilla/shared';

/**
 * Label selectors as Kubernetes writes them (metav1.LabelSelector): `matchLabels` and
 * `matchExpressions` with In, NotIn, Exists and DoesNotExist, ANDed together, and the string
 * form kubectl takes (`region in (eu),gpu=true,!legacy`). An empty selector selects everything,
 * as in Kubernetes. No npm library parses these, so this module does, once, for flotilla.yaml,
 * the API and the CLI.
 */

export const SelectorOperator = {
  In: 'In',
  NotIn: 'NotIn',
  Exists: 'Exists',
  DoesNotExist: 'DoesNotExist',
} as const;
export type SelectorOperator = (typeof SelectorOperator)[keyof typeof SelectorOperator];

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  /** Non-empty for In and NotIn; absent for Exists and DoesNotExist. */
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** A qualified name with an optional DNS-subdomain prefix, as Kubernetes validates label keys. */
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Why `key` is not a valid label key, or undefined. */
export function labelKeyProblem(key: string): string | undefined {
  if (!LABEL_KEY.test(key)) return 'is not a valid label key (name or prefix/name: letters, digits, -, _, .)';
  const slash = key.indexOf('/');
  if (slash > 253) return 'has a prefix longer than 253 characters';
  return undefined;
}

/** Why `value` is not a valid label value, or undefined. */
export function labelValueProblem(value: string): string | undefined {
  return LABEL_VALUE.test(value)
    ? undefined
    : `value "${value.length > 70 ? `${value.slice(0, 70)}…` : value}" is not a valid label value (at most 63 letters, digits, -, _, .; alphanumeric at both ends)`;
}

/** Throws an InvalidError naming the first bad key or value of `labels`. */
export function assertLabels(labels: Record<string, string>, field = 'label'): void {
  for (const [k, v] of Object.entries(labels)) {
    const kp = labelKeyProblem(k);
    if (kp) throw new InvalidError(`${field} ${k}`, kp);
    if (typeof v !== 'string') throw new InvalidError(`${field} ${k}`, 'value must be a string');
    const vp = labelValueProblem(v);
    if (vp) throw new InvalidError(`${field} ${k}`, vp);
  }
}

/** Whether `labels` satisfy every requirement of `selector`. */
export function matchesSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {}))
    if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  for (const r of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key);
    const value = has ? labels[r.key] : undefined;
    switch (r.operator) {
      case 'In':
        if (!has || !(r.values ?? []).includes(value as string)) return false;
        break;
      case 'NotIn':
        // As Kubernetes: a cluster without the label is not in the set.
        if (has && (r.values ?? []).includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/**
 * Checks a requirement as the API server would: a known operator, a valid key, values present
 * (and valid) for In/NotIn and absent for Exists/DoesNotExist. `at` names it in errors.
 */
export function checkRequirement(r: LabelSelectorRequirement, at: string): LabelSelectorRequirement {
  const kp = labelKeyProblem(r.key);
  if (kp) throw new InvalidError(`${at}.key`, kp);
  if (!Object.values(SelectorOperator).includes(r.operator))
    throw new InvalidError(`${at}.operator`, 'must be In, NotIn, Exists or DoesNotExist');
  if (r.operator === 'In' || r.operator === 'NotIn') {
    if (!r.values || r.values.length === 0)
      throw new InvalidError(`${at}.values`, `must be non-empty for operator ${r.operator}`);
    for (const [i, v] of r.values.entries()) {
      const vp = typeof v === 'string' ? labelValueProblem(v) : 'must be a string';
      if (vp) throw new InvalidError(`${at}.values[${i}]`, vp);
    }
    return { key: r.key, operator: r.operator, values: [...r.values] };
  }
  if (r.values && r.values.length > 0)
    throw new InvalidError(`${at}.values`, `must be empty for operator ${r.operator}`);
  return { key: r.key, operator: r.operator };
}

/**
 * Parses kubectl's selector syntax: comma-separated requirements, each one of `k=v`, `k==v`,
 * `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists) or `!k` (does not exist). `k=v` becomes
 * matchLabels; the rest matchExpressions (`k!=v` is NotIn with one value). The empty string
 * selects everything. Errors name the requirement at fault.
 */
export function parseSelector(text: string, field = 'selector'): LabelSelector {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: LabelSelectorRequirement[] = [];
  const parts = splitTopLevel(text, field);
  for (const [i, raw] of parts.entries()) {
    const part = raw.trim();
    const at = `${field}: requirement ${i + 1} ("${part.length > 60 ? `${part.slice(0, 60)}…` : part}")`;
    if (!part) {
      if (parts.length === 1) break;
      throw new InvalidError(at, 'is empty');
    }
    const set = /^(\S+?)\s+(in|notin)\s*\((.*)\)$/.exec(part);
    if (set) {
      const values = (set[3] as string).split(',').map((v) => v.trim());
      if (values.some((v) => v === '')) throw new InvalidError(at, 'has an empty value in its set');
      matchExpressions.push(
        checkSelectorPart({ key: set[1] as string, operator: set[2] === 'in' ? 'In' : 'NotIn', values }, at),
      );
      continue;
    }
    const cmp = /^([^=!\s]+)\s*(==|=|!=)\s*([^=!\s]*)$/.exec(part);
    if (cmp) {
      const [, key, op, value] = cmp as unknown as [string, string, string, string];
      if (op === '!=') {
        matchExpressions.push(checkSelectorPart({ key, operator: 'NotIn', values: [value] }, at));
        continue;
      }
      const kp = labelKeyProblem(key);
      if (kp) throw new InvalidError(at, `key ${kp}`);
      const vp = labelValueProblem(value);
      if (vp) throw new InvalidError(at, vp);
      if (Object.hasOwn(matchLabels, key) && matchLabels[key] !== value)
        throw new InvalidError(at, `asks ${key} to equal both "${matchLabels[key]}" and "${value}"`);
      matchLabels[key] = value;
      continue;
    }
    const not = /^!\s*(\S+)$/.exec(part);
    if (not) {
      matchExpressions.push(checkSelectorPart({ key: not[1] as string, operator: 'DoesNotExist' }, at));
      continue;
    }
    if (/^\S+$/.test(part)) {
      matchExpressions.push(checkSelectorPart({ key: part, operator: 'Exists' }, at));
      continue;
    }
    throw new InvalidError(at, 'is not a requirement (k=v, k!=v, k in (a,b), k notin (a,b), k or !k)');
  }
  return {
    ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}),
    ...(matchExpressions.length > 0 ? { matchExpressions } : {}),
  };
}

function checkSelectorPart(r: LabelSelectorRequirement, at: string): LabelSelectorRequirement {
  try {
    return checkRequirement(r, 'requirement');
  } catch (err) {
    throw new InvalidError(at, (err as Error).message.replace(/^requirement\.?/, '').trim());
  }
}

/** Splits at commas outside parentheses; an unbalanced parenthesis is an error. */
function splitTopLevel(text: string, field: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0 || depth > 1) throw new InvalidError(field, 'has unbalanced parentheses');
    if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  if (depth !== 0) throw new InvalidError(field, 'has unbalanced parentheses');
  out.push(current);
  return out;
}

/** The selector in kubectl's string form, e.g. for listings: `gpu=true,region in (eu)`; `` selects all. */
export function selectorText(selector: LabelSelector): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const r of selector.matchExpressions ?? []) {
    if (r.operator === 'In') parts.push(`${r.key} in (${(r.values ?? []).join(',')})`);
    else if (r.operator === 'NotIn') parts.push(`${r.key} notin (${(r.values ?? []).join(',')})`);
    else if (r.operator === 'Exists') parts.push(r.key);
    else parts.push(`!${r.key}`);
  }
  return parts.join(',');
}

/**
 * A label change as `flotilla cluster label` writes it: `k=v` sets, `k-` removes. Returns the
 * labels to set and the keys to remove; a key both set and removed is an error.
 */
export function parseLabelChanges(args: string[]): { set: Record<string, string>; remove: string[] } {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq < 0 && arg.endsWith('-')) {
      const key = arg.slice(0, -1);
      const kp = labelKeyProblem(key);
      if (kp) throw new InvalidError(`label ${arg}`, `key ${kp}`);
      remove.push(key);
      continue;
    }
    if (eq <= 0) throw new InvalidError(`label ${arg}`, 'expected key=value to set or key- to remove');
    const key = arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    assertLabels({ [key]: value });
    set[key] = value;
  }
  for (const k of remove)
    if (Object.hasOwn(set, k)) throw new InvalidError(`label ${k}`, 'is both set and removed');
  return { set, remove };
}
