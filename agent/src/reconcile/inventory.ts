import { identityKey, type KubeObject, type ObjectIdentity } from '@flotilla/shared';
import { type Cluster, statusOf } from './cluster.js';

/** One object the agent applied: its identity (with the version it was applied at) and manifest digest. */
export interface InventoryEntry extends ObjectIdentity {
  /** sha256 of the desired manifest last applied, so an unchanged manifest is not re-applied. */
  digest: string;
}

/** What the agent applied, by identity key. */
export type Inventory = Map<string, InventoryEntry>;

const DATA_KEY = 'inventory.json';

export function inventoryName(cluster: string): string {
  return `flotilla-inventory-${cluster}`;
}

function inventoryObject(cluster: string, namespace: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: inventoryName(cluster),
      namespace,
      labels: { 'app.kubernetes.io/managed-by': 'flotilla-agent', 'flotilla.dev/cluster': cluster },
    },
  };
}

/**
 * The inventory lives in the cluster (ConfigMap `flotilla-inventory-<cluster>`), not on the
 * agent's disk, so a reinstalled agent still knows what it may prune and never prunes
 * what it did not apply.
 */
export interface InventoryStore {
  read(): Promise<Inventory>;
  write(entries: Iterable<InventoryEntry>): Promise<void>;
}

export function createInventoryStore(
  cluster: Cluster,
  options: { cluster: string; namespace: string; fieldManager: string },
): InventoryStore {
  const base = inventoryObject(options.cluster, options.namespace);
  const subject = `inventory ${options.namespace}/${base.metadata.name}`;
  return {
    async read() {
      const live = await cluster.get(base);
      const text = (live?.data as Record<string, string> | undefined)?.[DATA_KEY];
      const out: Inventory = new Map();
      if (!text) return out;
      let entries: InventoryEntry[];
      try {
        entries = JSON.parse(text) as InventoryEntry[];
      } catch (err) {
        throw new Error(`${subject}: ${DATA_KEY} is not JSON`, { cause: err });
      }
      for (const e of entries) out.set(identityKey(e), e);
      return out;
    },
    async write(entries) {
      const sorted = [...entries].sort((a, b) => identityKey(a).localeCompare(identityKey(b)));
      const obj = { ...base, data: { [DATA_KEY]: JSON.stringify(sorted) } };
      try {
        await cluster.apply(obj, { fieldManager: options.fieldManager });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        // The namespace is missing: create it, then the ConfigMap.
        await cluster.apply(
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: options.namespace } },
          { fieldManager: options.fieldManager },
        );
        await cluster.apply(obj, { fieldManager: options.fieldManager });
      }
    },
  };
}

/** The manifest of an inventory entry, enough to read or delete the object. */
export function entryObject(e: ObjectIdentity): KubeObject {
  return {
    apiVersion: e.group ? `${e.group}/${e.version}` : e.version,
    kind: e.kind,
    metadata: { name: e.name, ...(e.namespace ? { namespace: e.namespace } : {}) },
  };
}
