import { badRequest } from './errors.js';
import type { Json } from './json.js';

type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' }
  | { key: string; op: '=' | '!='; values: [string] };

/** A parsed label selector (`app=web,tier in (a,b),!legacy`), as list and watch accept it. */
export type LabelSelector = (labels: Record<string, string> | undefined) => boolean;

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur);
  return parts.map((p) => p.trim()).filter(Boolean);
}

function parseRequirement(part: string): Requirement {
  let m = part.match(/^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/);
  if (m) {
    const values = m[3]!
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean);
    return { key: m[1]!, op: m[2] as 'in' | 'notin', values };
  }
  m = part.match(/^!\s*([\w./-]+)$/);
  if (m) return { key: m[1]!, op: 'notexists' };
  m = part.match(/^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/);
  if (m) return { key: m[1]!, op: m[2] === '!=' ? '!=' : '=', values: [m[3]!] };
  m = part.match(/^([\w./-]+)$/);
  if (m) return { key: m[1]!, op: 'exists' };
  throw badRequest(`unable to parse requirement: ${part}`);
}

function matches(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  switch (r.op) {
    case 'exists':
      return has;
    case 'notexists':
      return !has;
    case '=':
      return has && value === r.values[0];
    case '!=':
      return !has || value !== r.values[0];
    case 'in':
      return has && r.values.includes(value!);
    case 'notin':
      return !has || !r.values.includes(value!);
  }
}

/** Parses the `labelSelector` query parameter; equality- and set-based requirements, ANDed. */
export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  if (!text) return () => true;
  const reqs = splitTopLevel(text).map(parseRequirement);
  return (labels) => reqs.every((r) => matches(r, labels ?? {}));
}

/** Matches a `metav1.LabelSelector` object (matchLabels + matchExpressions) against labels. */
export function matchLabelSelectorObject(
  selector:
    | {
        matchLabels?: Record<string, string>;
        matchExpressions?: { key: string; operator: string; values?: string[] }[];
      }
    | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector) return false;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const op = String(e.operator).toLowerCase();
    const r: Requirement =
      op === 'exists' || op === 'doesnotexist'
        ? { key: e.key, op: op === 'exists' ? 'exists' : 'notexists' }
        : { key: e.key, op: op === 'in' ? 'in' : 'notin', values: e.values ?? [] };
    if (!matches(r, l)) return false;
  }
  return true;
}

/** Field selectors: `metadata.name=x`, `metadata.namespace!=y`, Json dotted path compared as a string. */
export type FieldSelector = (obj: Record<string, Json>) => boolean;

export function parseFieldSelector(text: string | null | undefined): FieldSelector {
  if (!text) return () => true;
  const reqs = splitTopLevel(text).map((part) => {
    const m = part.match(/^([\w.]+)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw badRequest(`invalid field selector: ${part}`);
    return { path: m[1]!.split('.'), neg: m[2] === '!=', value: m[3]!.trim() };
  });
  return (obj) =>
    reqs.every((r) => {
      let cur: Json = obj;
      for (const p of r.path) cur = cur?.[p];
      const actual = cur === undefined || cur === null ? '' : String(cur);
      return r.neg ? actual !== r.value : actual === r.value;
    });
}
