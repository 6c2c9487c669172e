import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Json } from './json.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change, as list/watch replays it. `typeKey` is `group/plural` (version independent). */
export interface StoreEvent {
  rv: number;
  type: WatchEventType;
  typeKey: string;
  object: Json;
  /** The object before a MODIFIED change, so selector watches can turn it into ADDED or DELETED. */
  prev?: Json;
}

export interface StoreOptions {
  /** Where to keep objects across restarts; none keeps them in memory only. */
  statePath?: string;
  /** How many events watch can resume from; older resourceVersions get 410 Gone. */
  historySize: number;
}

interface StateFile {
  resourceVersion: number;
  objects: { typeKey: string; object: Json }[];
}

/** `ns/name` or `name` for cluster-scoped objects. */
export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/**
 * Every object of the test cluster, one global resourceVersion counter (as etcd's revision) and a
 * bounded history of events for watch. Writes are synchronous, so each request sees its own
 * writes and resourceVersions are strictly increasing.
 */
export class KubeStore {
  private rv = 0;
  private readonly objects = new Map<string, Map<string, Json>>();
  /** Kept events are `history[historyStart..]`; the prefix is dropped in batches, so trimming stays O(1) per event. */
  private history: StoreEvent[] = [];
  private historyStart = 0;
  /** Events at or below this resourceVersion are gone; watch from older versions gets 410. */
  private compactedRv = 0;
  private readonly listeners = new Set<(ev: StoreEvent) => void>();
  private saveTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: StoreOptions) {
    if (options.statePath) this.load(options.statePath);
    this.compactedRv = this.rv;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  get oldestResumableRv(): number {
    return this.compactedRv;
  }

  /** The next resourceVersion, consumed. */
  nextRv(): number {
    this.rv += 1;
    return this.rv;
  }

  get(typeKey: string, namespace: string | undefined, name: string): Json | undefined {
    return this.objects.get(typeKey)?.get(objectKey(namespace, name));
  }

  list(typeKey: string, namespace?: string): Json[] {
    const all = [...(this.objects.get(typeKey)?.values() ?? [])];
    const filtered = namespace ? all.filter((o) => o.metadata?.namespace === namespace) : all;
    return filtered.sort((a, b) =>
      objectKey(a.metadata.namespace, a.metadata.name).localeCompare(
        objectKey(b.metadata.namespace, b.metadata.name),
      ),
    );
  }

  /** The objects of a type (in one namespace), unsorted: for controllers, which need no order. */
  values(typeKey: string, namespace?: string): Json[] {
    const all = [...(this.objects.get(typeKey)?.values() ?? [])];
    return namespace ? all.filter((o) => o.metadata?.namespace === namespace) : all;
  }

  typeKeys(): string[] {
    return [...this.objects.keys()];
  }

  /** Stores an object whose metadata.resourceVersion was already set from nextRv(). */
  put(typeKey: string, object: Json): void {
    const key = objectKey(object.metadata.namespace, object.metadata.name);
    let bucket = this.objects.get(typeKey);
    if (!bucket) {
      bucket = new Map();
      this.objects.set(typeKey, bucket);
    }
    const prev = bucket.get(key);
    bucket.set(key, object);
    this.emit({
      rv: Number(object.metadata.resourceVersion),
      type: prev ? 'MODIFIED' : 'ADDED',
      typeKey,
      object,
      ...(prev ? { prev } : {}),
    });
  }

  /** Removes an object; the DELETED event carries a fresh resourceVersion, as the real server's does. */
  remove(typeKey: string, object: Json): Json {
    const key = objectKey(object.metadata.namespace, object.metadata.name);
    this.objects.get(typeKey)?.delete(key);
    const rv = this.nextRv();
    const gone = { ...object, metadata: { ...object.metadata, resourceVersion: String(rv) } };
    this.emit({ rv, type: 'DELETED', typeKey, object: gone });
    return gone;
  }

  /** Events after `rv`, or undefined when they are no longer kept (the caller answers 410). */
  eventsSince(rv: number): StoreEvent[] | undefined {
    if (rv < this.compactedRv) return undefined;
    const out: StoreEvent[] = [];
    for (let i = this.historyStart; i < this.history.length; i++) {
      if (this.history[i]!.rv > rv) out.push(this.history[i]!);
    }
    return out;
  }

  /** Forgets all history, as etcd compaction does: watches from Json older version get 410 Gone. */
  compact(): void {
    this.history = [];
    this.historyStart = 0;
    this.compactedRv = this.rv;
  }

  subscribe(listener: (ev: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(ev: StoreEvent): void {
    this.history.push(ev);
    if (this.history.length - this.historyStart > this.options.historySize) {
      this.compactedRv = this.history[this.historyStart]!.rv;
      this.historyStart++;
      if (this.historyStart >= this.options.historySize) {
        this.history = this.history.slice(this.historyStart);
        this.historyStart = 0;
      }
    }
    this.scheduleSave();
    for (const l of [...this.listeners]) l(ev);
  }

  private scheduleSave(): void {
    if (!this.options.statePath || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, 100);
  }

  /** Writes the state file now (atomically: temp file, then rename). */
  save(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const path = this.options.statePath;
    if (!path) return;
    const state: StateFile = { resourceVersion: this.rv, objects: [] };
    for (const [typeKey, bucket] of this.objects) {
      for (const object of bucket.values()) state.objects.push({ typeKey, object });
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(`${path}.tmp`, JSON.stringify(state));
    renameSync(`${path}.tmp`, path);
  }

  private load(path: string): void {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`kube state ${path}: cannot read: ${(err as Error).message}`, { cause: err });
    }
    let state: StateFile;
    try {
      state = JSON.parse(text) as StateFile;
    } catch (err) {
      throw new Error(`kube state ${path}: not JSON: ${(err as Error).message}`, { cause: err });
    }
    this.rv = state.resourceVersion;
    for (const { typeKey, object } of state.objects) {
      let bucket = this.objects.get(typeKey);
      if (!bucket) {
        bucket = new Map();
        this.objects.set(typeKey, bucket);
      }
      bucket.set(objectKey(object.metadata.namespace, object.metadata.name), object);
    }
  }

  dispose(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.listeners.clear();
  }
}
