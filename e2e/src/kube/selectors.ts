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

/**
 * The fields a kind may be selected by, where the test server knows the real server's list
 * (ToSelectableFields in pkg/registry/<group>/<kind>/strategy.go): any other field is a 400,
 * as there. Kinds not listed here compare any dotted path.
 */
const SELECTABLE: Record<string, Record<string, (o: Json) => unknown>> = {
  Event: {
    'metadata.name': (o) => o.metadata?.name,
    'metadata.namespace': (o) => o.metadata?.namespace,
    'involvedObject.kind': (o) => o.involvedObject?.kind,
    'involvedObject.namespace': (o) => o.involvedObject?.namespace,
    'involvedObject.name': (o) => o.involvedObject?.name,
    'involvedObject.uid': (o) => o.involvedObject?.uid,
    'involvedObject.apiVersion': (o) => o.involvedObject?.apiVersion,
    'involvedObject.resourceVersion': (o) => o.involvedObject?.resourceVersion,
    'involvedObject.fieldPath': (o) => o.involvedObject?.fieldPath,
    reason: (o) => o.reason,
    reportingComponent: (o) => o.reportingComponent,
    source: (o) => o.source?.component || o.reportingComponent,
    type: (o) => o.type,
  },
};

/** `kind`: the core kind listed, for the fields only it may be selected by. */
export function parseFieldSelector(text: string | null | undefined, kind?: string): FieldSelector {
  if (!text) return () => true;
  const selectable = kind ? SELECTABLE[kind] : undefined;
  const reqs = splitTopLevel(text).map((part) => {
    const m = part.match(/^([\w.]+)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw badRequest(`invalid field selector: ${part}`);
    const field = m[1]!;
    if (selectable && !selectable[field]) throw badRequest(`field label not supported: ${field}`);
    const path = field.split('.');
    const read =
      selectable?.[field] ??
      ((o: Json) => {
        let cur: Json = o;
        for (const p of path) cur = cur?.[p];
        return cur;
      });
    return { read, neg: m[2] === '!=', value: m[3]!.trim() };
  });
  return (obj) =>
    reqs.every((r) => {
      const cur = r.read(obj);
      const actual = cur === undefined || cur === null ? '' : String(cur);
      return r.neg ? actual !== r.value : actual === r.value;
    });
}
