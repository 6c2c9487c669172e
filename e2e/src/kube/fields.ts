import { KubeStatusError } from './errors.js';
import type { Json } from './json.js';
import { isAtomicMap, isSetList, keyDefault, listMapKeys } from './schema.js';

/**
 * A set of field paths, the unit of ownership in server-side apply. A path is a list of
 * elements as managedFields spells them (`f:spec`, `k:{"name":"web"}`, `v:"x"`), joined by NUL.
 */
export type FieldSet = Set<string>;

const SEP = '\u0000';

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface Ctx {
  kind: string;
  custom: boolean;
}

/** The key element of a list item: `k:{"containerPort":80,"protocol":"TCP"}`. */
function keyElement(item: Record<string, Json>, keys: string[]): string {
  const parts: Record<string, Json> = {};
  for (const k of [...keys].sort()) {
    const v = item[k] ?? keyDefault(k);
    if (v !== undefined) parts[k] = v;
  }
  return `k:${JSON.stringify(parts)}`;
}

/** The fields a (partial) object sets, as structured-merge-diff's ToFieldSet computes them. */
export function toFieldSet(obj: Json, ctx: Ctx): FieldSet {
  const set: FieldSet = new Set();
  const walk = (value: Json, path: string[], names: string[]) => {
    if (Array.isArray(value)) {
      const keys = listMapKeys(ctx.kind, names, ctx.custom);
      if (keys) {
        for (const item of value) {
          if (!isObject(item)) continue;
          const p = [...path, keyElement(item, keys)];
          set.add(p.join(SEP));
          walkMap(item, p, names);
        }
      } else if (isSetList(names)) {
        for (const item of value) set.add([...path, `v:${JSON.stringify(item)}`].join(SEP));
      } else set.add(path.join(SEP));
      return;
    }
    if (isObject(value) && Object.keys(value).length > 0 && !isAtomicMap(names)) {
      walkMap(value, path, names);
      return;
    }
    set.add(path.join(SEP));
  };
  const walkMap = (value: Record<string, Json>, path: string[], names: string[]) => {
    for (const [k, v] of Object.entries(value)) walk(v, [...path, `f:${k}`], [...names, k]);
  };
  if (isObject(obj)) walkMap(obj, [], []);
  return set;
}

/** Fields in which `b` differs from `a` (added or changed leaves) and fields `a` has that `b` lacks. */
export function compareFields(a: Json, b: Json, ctx: Ctx): { changed: FieldSet; removed: FieldSet } {
  const fa = toFieldSet(a, ctx);
  const fb = toFieldSet(b, ctx);
  const changed: FieldSet = new Set();
  const removed: FieldSet = new Set();
  for (const p of fb) {
    if (!fa.has(p)) changed.add(p);
    // a list item's own entry changes only when the item appears; its fields are compared one by one
    else if (
      !lastElement(p).startsWith('k:') &&
      JSON.stringify(valueAt(a, p)) !== JSON.stringify(valueAt(b, p))
    ) {
      changed.add(p);
    }
  }
  for (const p of fa) if (!fb.has(p)) removed.add(p);
  return { changed, removed };
}

function lastElement(path: string): string {
  const i = path.lastIndexOf(SEP);
  return i < 0 ? path : path.slice(i + 1);
}

/** The value at a field path (undefined when absent). */
export function valueAt(obj: Json, path: string): Json {
  if (path === '') return obj;
  let cur = obj;
  for (const el of path.split(SEP)) {
    if (cur === undefined) return undefined;
    if (el.startsWith('f:')) cur = isObject(cur) ? cur[el.slice(2)] : undefined;
    else if (el.startsWith('k:')) {
      const key = JSON.parse(el.slice(2)) as Record<string, Json>;
      cur = Array.isArray(cur)
        ? cur.find((i) => isObject(i) && Object.entries(key).every(([k, v]) => (i[k] ?? keyDefault(k)) === v))
        : undefined;
    } else if (el.startsWith('v:')) {
      const v = JSON.parse(el.slice(2));
      cur = Array.isArray(cur) && cur.includes(v) ? v : undefined;
    } else return undefined;
  }
  return cur;
}

/** Removes the value at a field path; list items disappear whole. */
export function removeAt(obj: Json, path: string): void {
  const els = path.split(SEP);
  let cur = obj;
  for (let i = 0; i < els.length; i++) {
    const el = els[i]!;
    const last = i === els.length - 1;
    if (el.startsWith('f:')) {
      const k = el.slice(2);
      if (!isObject(cur)) return;
      if (last) {
        delete cur[k];
        return;
      }
      cur = cur[k];
    } else if (el.startsWith('k:') || el.startsWith('v:')) {
      if (!Array.isArray(cur)) return;
      const idx = el.startsWith('k:')
        ? cur.findIndex((it) => {
            const key = JSON.parse(el.slice(2)) as Record<string, Json>;
            return isObject(it) && Object.entries(key).every(([k, v]) => (it[k] ?? keyDefault(k)) === v);
          })
        : cur.indexOf(JSON.parse(el.slice(2)));
      if (idx < 0) return;
      if (last) {
        cur.splice(idx, 1);
        return;
      }
      cur = cur[idx];
    } else return;
  }
}

/** managedFields' `fieldsV1` encoding of a set. */
export function encodeFieldsV1(set: FieldSet): Record<string, Json> {
  const root: Record<string, Json> = {};
  const sorted = [...set].sort();
  for (const p of sorted) {
    if (p === '') continue;
    let node = root;
    for (const el of p.split(SEP)) {
      node[el] ??= {};
      node = node[el];
    }
  }
  const mark = (node: Record<string, Json>, prefix: string) => {
    for (const [el, child] of Object.entries(node)) {
      if (el === '.') continue;
      const p = prefix ? `${prefix}${SEP}${el}` : el;
      if (Object.keys(child).length > 0) {
        if (set.has(p)) child['.'] = {};
        mark(child, p);
      }
    }
  };
  mark(root, '');
  return root;
}

/** Decodes `fieldsV1` back into a set. */
export function decodeFieldsV1(fields: Record<string, Json> | undefined): FieldSet {
  const set: FieldSet = new Set();
  const walk = (node: Record<string, Json>, prefix: string[]) => {
    for (const [el, child] of Object.entries(node)) {
      if (el === '.') {
        set.add(prefix.join(SEP));
        continue;
      }
      const p = [...prefix, el];
      if (!isObject(child) || Object.keys(child).length === 0) set.add(p.join(SEP));
      else walk(child, p);
    }
  };
  if (fields) walk(fields, []);
  return set;
}

/** `.spec.replicas`, `.spec.template.spec.containers[name="web"].image`: how conflicts name a field. */
export function describePath(path: string): string {
  return path
    .split(SEP)
    .map((el) => {
      if (el.startsWith('f:')) return `.${el.slice(2)}`;
      if (el.startsWith('k:')) {
        const key = JSON.parse(el.slice(2)) as Record<string, Json>;
        return `[${Object.entries(key)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(',')}]`;
      }
      if (el.startsWith('v:')) return `[=${el.slice(2)}]`;
      return el;
    })
    .join('');
}

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, Json>;
  subresource?: string;
}

/** Fields never tracked for ownership. */
function ignored(path: string, statusSeparate: boolean, subresource: string | undefined): boolean {
  const first = path.split(SEP, 2);
  if (first[0] === 'f:metadata') {
    const f = first[1];
    return (
      f === undefined ||
      [
        'f:managedFields',
        'f:resourceVersion',
        'f:uid',
        'f:generation',
        'f:creationTimestamp',
        'f:selfLink',
      ].includes(f) ||
      f.startsWith('f:deletionTimestamp')
    );
  }
  if (first[0] === 'f:apiVersion' || first[0] === 'f:kind') return true;
  if (statusSeparate && subresource !== 'status' && first[0] === 'f:status') return true;
  if (subresource === 'status' && first[0] !== 'f:status') return true;
  return false;
}

function filterIgnored(set: FieldSet, statusSeparate: boolean, subresource?: string): FieldSet {
  return new Set([...set].filter((p) => !ignored(p, statusSeparate, subresource)));
}

interface Managers {
  entries: { key: string; entry: Omit<ManagedFieldsEntry, 'fieldsV1'>; set: FieldSet }[];
}

function readManagers(obj: Json): Managers {
  const list: ManagedFieldsEntry[] = obj?.metadata?.managedFields ?? [];
  return {
    entries: list.map((e) => ({
      key: `${e.manager}\u0001${e.operation}\u0001${e.subresource ?? ''}`,
      entry: {
        manager: e.manager,
        operation: e.operation,
        apiVersion: e.apiVersion,
        time: e.time,
        fieldsType: 'FieldsV1',
        ...(e.subresource ? { subresource: e.subresource } : {}),
      },
      set: decodeFieldsV1(e.fieldsV1),
    })),
  };
}

function writeManagers(m: Managers): ManagedFieldsEntry[] {
  return m.entries
    .filter((e) => e.set.size > 0)
    .map((e) => ({ ...e.entry, fieldsV1: encodeFieldsV1(e.set) }) as ManagedFieldsEntry);
}

export interface OwnershipOptions {
  kind: string;
  custom: boolean;
  apiVersion: string;
  /** Whether status is a subresource of this type (then main-resource writes never own status). */
  statusSeparate: boolean;
  subresource?: string;
  manager: string;
  now: string;
}

/** Records a non-apply write (create, update, patch): the manager owns what it changed; others lose it. */
export function trackUpdate(oldObj: Json, newObj: Json, o: OwnershipOptions): ManagedFieldsEntry[] {
  const ctx = { kind: o.kind, custom: o.custom };
  const m = readManagers(oldObj);
  // only the part this write can own is compared (the rest is filtered out below anyway): status
  // for the status subresource, all but status where status is separate. Controllers write status
  // often, and comparing whole pod templates each time is what made them slow.
  const scope = (x: Json): Json => {
    if (!isObject(x)) return x;
    if (o.subresource === 'status') return { status: x.status };
    if (o.statusSeparate) {
      const { status: _s, ...rest } = x;
      return rest;
    }
    return x;
  };
  const { changed, removed } = compareFields(stripMeta(scope(oldObj)), stripMeta(scope(newObj)), ctx);
  const changedF = filterIgnored(changed, o.statusSeparate, o.subresource);
  const removedF = filterIgnored(removed, o.statusSeparate, o.subresource);
  const key = `${o.manager}\u0001Update\u0001${o.subresource ?? ''}`;
  for (const e of m.entries) {
    if (e.key === key) continue;
    for (const p of changedF) e.set.delete(p);
    for (const p of removedF) e.set.delete(p);
  }
  let mine = m.entries.find((e) => e.key === key);
  if (!mine) {
    if (changedF.size === 0) return writeManagers(m);
    mine = {
      key,
      entry: {
        manager: o.manager,
        operation: 'Update',
        apiVersion: o.apiVersion,
        time: o.now,
        fieldsType: 'FieldsV1',
        ...(o.subresource ? { subresource: o.subresource } : {}),
      },
      set: new Set(),
    };
    m.entries.push(mine);
  }
  if (changedF.size > 0) mine.entry.time = o.now;
  for (const p of changedF) mine.set.add(p);
  for (const p of removedF) mine.set.delete(p);
  return writeManagers(m);
}

/** Drops metadata fields that are not user-owned before comparing. */
function stripMeta(obj: Json): Json {
  if (!isObject(obj)) return obj;
  const { metadata, ...rest } = obj;
  if (!isObject(metadata)) return rest;
  const {
    managedFields: _m,
    resourceVersion: _r,
    uid: _u,
    generation: _g,
    creationTimestamp: _c,
    ...meta
  } = metadata;
  return { ...rest, metadata: meta };
}

/** Merges an applied configuration into the live object, as structured-merge-diff's Merge does. */
export function mergeApplied(live: Json, config: Json, ctx: Ctx, names: string[] = []): Json {
  if (Array.isArray(config)) {
    const keys = listMapKeys(ctx.kind, names, ctx.custom);
    if (keys && Array.isArray(live)) {
      const out: Json[] = [];
      const id = (x: Json) => (isObject(x) ? keyElement(x, keys) : JSON.stringify(x));
      const liveById = new Map(live.map((x) => [id(x), x]));
      const configIds = new Set(config.map(id));
      for (const item of config) {
        const existing = liveById.get(id(item));
        out.push(existing !== undefined ? mergeApplied(existing, item, ctx, names) : structuredClone(item));
      }
      for (const x of live) if (!configIds.has(id(x))) out.push(x);
      return out;
    }
    if (isSetList(names) && Array.isArray(live)) {
      const out = [...live];
      for (const v of config) if (!out.includes(v)) out.push(v);
      return out;
    }
    return structuredClone(config);
  }
  if (isObject(config) && !isAtomicMap(names)) {
    const out: Record<string, Json> = isObject(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(config)) {
      if (v === null) {
        delete out[k];
        continue;
      }
      out[k] = mergeApplied(out[k], v, ctx, [...names, k]);
    }
    return out;
  }
  return structuredClone(config);
}

export interface ApplyResult {
  object: Json;
  managedFields: ManagedFieldsEntry[];
}

/**
 * Server-side apply of `config` by `manager` onto `live` (undefined on create): merges, raises a 409
 * naming each conflicting field and its manager unless `force`, takes over forced fields, removes
 * fields the manager applied before and no longer applies when nobody else owns them, and records
 * the manager's new set as an Apply entry.
 */
export function serverSideApply(
  live: Json,
  config: Json,
  o: OwnershipOptions & { force: boolean },
): ApplyResult {
  const ctx = { kind: o.kind, custom: o.custom };
  const base = live ?? {};
  let merged = mergeApplied(stripMeta(base), stripMeta(config), ctx);
  const m = readManagers(base);
  const key = `${o.manager}\u0001Apply\u0001${o.subresource ?? ''}`;
  const applied = filterIgnored(toFieldSet(stripMeta(config), ctx), o.statusSeparate, o.subresource);
  const { changed, removed } = compareFields(stripMeta(base), merged, ctx);
  const touched = filterIgnored(new Set([...changed, ...removed]), o.statusSeparate, o.subresource);
  const conflicts: { manager: string; path: string }[] = [];
  for (const e of m.entries) {
    if (e.key === key) continue;
    for (const p of touched) if (e.set.has(p)) conflicts.push({ manager: e.entry.manager, path: p });
  }
  if (conflicts.length > 0 && !o.force) throw conflictError(conflicts, o.apiVersion);
  for (const e of m.entries) {
    if (e.key === key) continue;
    for (const p of touched) e.set.delete(p);
  }
  let mine = m.entries.find((e) => e.key === key);
  const previous = mine?.set ?? new Set<string>();
  const others = new Set<string>();
  for (const e of m.entries) if (e.key !== key) for (const p of e.set) others.add(p);
  // fields this manager applied before and dropped now: removed unless another manager owns them
  const dropped = [...previous].filter((p) => !applied.has(p) && !others.has(p));
  dropped.sort((a, b) => b.length - a.length);
  for (const p of dropped) if (!hasOwnedDescendant(p, others, applied)) removeAt(merged, p);
  merged = pruneEmptyParents(merged, previous, applied, others);
  if (!mine) {
    mine = {
      key,
      entry: {
        manager: o.manager,
        operation: 'Apply',
        apiVersion: o.apiVersion,
        time: o.now,
        fieldsType: 'FieldsV1',
        ...(o.subresource ? { subresource: o.subresource } : {}),
      },
      set: applied,
    };
    m.entries.push(mine);
  } else {
    if (!sameSet(mine.set, applied) || touched.size > 0) mine.entry.time = o.now;
    mine.set = applied;
    mine.entry.apiVersion = o.apiVersion;
  }
  const baseMeta = isObject(base.metadata) ? base.metadata : {};
  const meta = { ...baseMeta, ...(isObject(merged.metadata) ? merged.metadata : {}) };
  for (const k of ['labels', 'annotations']) {
    if (!(k in (merged.metadata ?? {}))) delete meta[k];
  }
  const object = { ...merged, metadata: meta };
  return { object, managedFields: writeManagers(m) };
}

function hasOwnedDescendant(path: string, ...sets: FieldSet[]): boolean {
  const prefix = path + SEP;
  return sets.some((s) => [...s].some((p) => p.startsWith(prefix)));
}

/** Removes maps emptied by pruning when this manager created them (labels: {} after the last label goes). */
function pruneEmptyParents(obj: Json, previous: FieldSet, applied: FieldSet, others: FieldSet): Json {
  const parents = new Set<string>();
  for (const p of previous) {
    const els = p.split(SEP);
    for (let i = 1; i < els.length; i++) parents.add(els.slice(0, i).join(SEP));
  }
  const sorted = [...parents].sort((a, b) => b.length - a.length);
  for (const p of sorted) {
    if (hasOwnedDescendant(p, applied, others) || applied.has(p) || others.has(p)) continue;
    const v = valueAt(obj, p);
    if (isObject(v) && Object.keys(v).length === 0) removeAt(obj, p);
  }
  return obj;
}

function sameSet(a: FieldSet, b: FieldSet): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

function conflictError(conflicts: { manager: string; path: string }[], apiVersion: string): KubeStatusError {
  const causes = conflicts.map((c) => ({
    type: 'FieldManagerConflict',
    message: `conflict with "${c.manager}" using ${apiVersion}`,
    field: describePath(c.path),
  }));
  let message: string;
  if (conflicts.length === 1)
    message = `Apply failed with 1 conflict: ${causes[0]!.message}: ${causes[0]!.field}`;
  else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts)
      byManager.set(c.manager, [...(byManager.get(c.manager) ?? []), describePath(c.path)]);
    const lines: string[] = [];
    for (const manager of [...byManager.keys()].sort()) {
      lines.push(`conflicts with "${manager}" using ${apiVersion}:`);
      for (const p of byManager.get(manager)!) lines.push(`- ${p}`);
    }
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  return new KubeStatusError(409, 'Conflict', message, { causes });
}
