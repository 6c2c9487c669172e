import { badRequest, KubeStatusError } from './errors.js';
import type { Json } from './json.js';
import { listMergeKey } from './schema.js';

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch (`application/merge-patch+json`): objects merge, null deletes, lists replace. */
export function jsonMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = jsonMergePatch(out[k], v);
  }
  return out;
}

function decodePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw badRequest(`json patch: invalid pointer ${pointer}`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, path: string[]): { parent: Json; key: string } {
  let cur = doc;
  for (const seg of path.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(seg)] : cur?.[seg];
    if (cur === undefined)
      throw new KubeStatusError(422, 'Invalid', `json patch: path /${path.join('/')} does not exist`);
  }
  return { parent: cur, key: path[path.length - 1]! };
}

function getAt(doc: Json, path: string[]): Json {
  let cur = doc;
  for (const seg of path) cur = Array.isArray(cur) ? cur[Number(seg)] : cur?.[seg];
  return cur;
}

/** RFC 6902 JSON patch (`application/json-patch+json`): add, remove, replace, move, copy, test. */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('json patch: body must be a list of operations');
  let doc = structuredClone(target);
  for (const op of ops) {
    const path = decodePointer(String(op.path ?? ''));
    const apply = (kind: string, value?: Json) => {
      if (path.length === 0) {
        if (kind === 'remove') throw badRequest('json patch: cannot remove the root');
        doc = structuredClone(value);
        return;
      }
      const { parent, key } = parentOf(doc, path);
      if (Array.isArray(parent)) {
        const idx = key === '-' ? parent.length : Number(key);
        if (kind === 'add') parent.splice(idx, 0, structuredClone(value));
        else if (kind === 'remove') parent.splice(idx, 1);
        else parent[idx] = structuredClone(value);
      } else if (isObject(parent)) {
        if (kind === 'remove') {
          if (!(key in parent))
            throw new KubeStatusError(422, 'Invalid', `json patch: path ${op.path} does not exist`);
          delete parent[key];
        } else if (kind === 'replace' && !(key in parent)) {
          throw new KubeStatusError(422, 'Invalid', `json patch: replace of missing path ${op.path}`);
        } else parent[key] = structuredClone(value);
      } else throw new KubeStatusError(422, 'Invalid', `json patch: path ${op.path} does not exist`);
    };
    switch (op.op) {
      case 'add':
      case 'replace':
        apply(op.op, op.value);
        break;
      case 'remove':
        apply('remove');
        break;
      case 'move':
      case 'copy': {
        const value = getAt(doc, decodePointer(String(op.from)));
        if (op.op === 'move') {
          const from = decodePointer(String(op.from));
          const { parent, key } = parentOf(doc, from);
          if (Array.isArray(parent)) parent.splice(Number(key), 1);
          else delete parent[key];
        }
        apply('add', value);
        break;
      }
      case 'test':
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op.value)) {
          throw new KubeStatusError(422, 'Invalid', `json patch: test failed at ${op.path}`);
        }
        break;
      default:
        throw badRequest(`json patch: unknown op ${op.op}`);
    }
  }
  return doc;
}

/**
 * Strategic merge patch (`application/strategic-merge-patch+json`) as kubectl apply, edit, label and
 * patch send it: maps merge, null deletes, lists with a merge key (containers by name, ports by
 * containerPort, env by name, volumes by name, ...) merge item by item, other lists replace.
 * Directives: `$patch: replace|delete|merge`, `$retainKeys`, `$setElementOrder/<field>`,
 * `$deleteFromPrimitiveList/<field>`.
 */
export function strategicMergePatch(target: Json, patch: Json, kind: string, path: string[] = []): Json {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  const retain: string[] | undefined = Array.isArray(patch.$retainKeys) ? patch.$retainKeys : undefined;
  const orders: Record<string, Json[]> = {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith('$setElementOrder/')) {
      orders[k.slice('$setElementOrder/'.length)] = v as Json[];
      continue;
    }
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(out[field])) out[field] = out[field].filter((x: Json) => !(v as Json[]).includes(x));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const childPath = [...path, k];
    if (Array.isArray(v)) {
      out[k] = mergeList(out[k], v, kind, childPath);
    } else if (isObject(v)) {
      const merged = strategicMergePatch(out[k], v, kind, childPath);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else out[k] = v;
  }
  for (const [field, order] of Object.entries(orders)) {
    if (Array.isArray(out[field]))
      out[field] = applyOrder(out[field], order, listMergeKey(kind, [...path, field]));
  }
  if (retain) for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  return out;
}

function mergeList(live: Json, patch: Json[], kind: string, path: string[]): Json[] {
  const key = listMergeKey(kind, path);
  const field = path[path.length - 1];
  if (field === 'finalizers' && path.length === 2) {
    // metadata.finalizers merges as a set of strings
    const base: Json[] = Array.isArray(live) ? [...live] : [];
    for (const v of patch) if (!base.includes(v)) base.push(v);
    return base;
  }
  if (!key) {
    if (patch.some((i) => isObject(i) && i.$patch === 'replace'))
      return stripDirectives(patch.filter((i) => !i.$patch));
    return stripDirectives(patch);
  }
  if (patch.length === 1 && isObject(patch[0]) && patch[0].$patch === 'replace') return [];
  const out: Json[] = Array.isArray(live) ? live.map((x) => structuredClone(x)) : [];
  const replaceAll = patch.some((i) => isObject(i) && i.$patch === 'replace');
  if (replaceAll) return stripDirectives(patch.filter((i) => !(isObject(i) && i.$patch === 'replace')));
  for (const item of patch) {
    if (!isObject(item)) {
      out.push(item);
      continue;
    }
    const idx = out.findIndex((x) => isObject(x) && x[key] === item[key]);
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = strategicMergePatch(out[idx], item, kind, path);
    else out.push(strategicMergePatch({}, item, kind, path));
  }
  return out;
}

function applyOrder(list: Json[], order: Json[], key: string | undefined): Json[] {
  const id = (x: Json) => (key && isObject(x) ? x[key] : JSON.stringify(x));
  const wanted = order.map((o) => (key && isObject(o) ? o[key] : JSON.stringify(o)));
  const inOrder = wanted.map((w) => list.find((x) => id(x) === w)).filter((x) => x !== undefined);
  const rest = list.filter((x) => !wanted.includes(id(x)));
  return [...inOrder, ...rest];
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: Record<string, Json> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith('$')) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}
