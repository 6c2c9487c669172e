/**
 * Looks keys up in batches: keys asked for while no batch is running go together into one
 * (started once the current I/O callbacks are done, so a burst of requests shares it); keys
 * asked for while one runs wait for the next. So every answer comes from a lookup that started
 * after it was asked for (nothing is cached), at one query per batch instead of one per key.
 * A failed batch fails each of its callers.
 */
export interface BatchedLookup<K, V> {
  get(key: K): Promise<V | undefined>;
}

export function createBatchedLookup<K, V>(lookup: (keys: K[]) => Promise<Map<K, V>>): BatchedLookup<K, V> {
  type Waiter = { resolve(v: V | undefined): void; reject(err: unknown): void };
  let queued = new Map<K, Waiter[]>();
  let running = false;

  const run = async () => {
    while (queued.size > 0) {
      const batch = queued;
      queued = new Map();
      try {
        const found = await lookup([...batch.keys()]);
        for (const [key, waiters] of batch) for (const w of waiters) w.resolve(found.get(key));
      } catch (err) {
        for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
      }
    }
    running = false;
  };

  return {
    get(key) {
      return new Promise<V | undefined>((resolve, reject) => {
        const waiters = queued.get(key);
        if (waiters) waiters.push({ resolve, reject });
        else queued.set(key, [{ resolve, reject }]);
        if (!running) {
          running = true;
          setImmediate(() => void run());
        }
      });
    },
  };
}
