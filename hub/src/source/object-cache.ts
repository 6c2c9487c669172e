import { LRUCache } from 'lru-cache';

/** How much of the repository's immutable objects the hub keeps in memory. */
export interface ObjectCacheOptions {
  /** Tree objects kept (each an array of entries). Default 20,000. */
  maxTrees?: number;
  /** Bytes of blobs kept. Default 64 MiB. */
  maxBlobBytes?: number;
}

/**
 * Git objects by oid never change, so every read of one after the first can come from
 * memory. A publish pass over 1,000 clusters asks for the same few trees and blobs thousands of
 * times; without this each ask is a stat, an open and an inflate on disk.
 *
 * Values are shared between callers: they must not be mutated.
 */
export interface ObjectCache {
  tree<T extends object>(oid: string, load: () => Promise<T>): Promise<T>;
  blob(oid: string, load: () => Promise<Uint8Array>): Promise<Uint8Array>;
}

export function createObjectCache(options: ObjectCacheOptions = {}): ObjectCache {
  const trees = new LRUCache<string, object>({ max: options.maxTrees ?? 20_000 });
  const blobs = new LRUCache<string, Uint8Array>({
    maxSize: options.maxBlobBytes ?? 64 * 1024 * 1024,
    sizeCalculation: (b) => Math.max(1, b.byteLength),
  });
  /** One load per oid at a time: concurrent renders of a fleet ask for the same objects together. */
  const loading = new Map<string, Promise<unknown>>();
  const through = async <T extends object>(
    cache: LRUCache<string, object>,
    prefix: string,
    oid: string,
    load: () => Promise<T>,
  ): Promise<T> => {
    const hit = cache.get(oid) as T | undefined;
    if (hit) return hit;
    const key = `${prefix}${oid}`;
    let pending = loading.get(key) as Promise<T> | undefined;
    if (!pending) {
      pending = load().finally(() => loading.delete(key));
      loading.set(key, pending);
    }
    const value = await pending;
    cache.set(oid, value);
    return value;
  };
  return {
    tree: (oid, load) => through(trees, 't:', oid, load),
    blob: (oid, load) => through(blobs as LRUCache<string, object>, 'b:', oid, load),
  };
}
