import {
  type Bundle,
  contentDigest,
  type Envelope,
  encodeEnvelope,
  type KubeObject,
  type Logger,
  redactUrl,
  type SyncPolicy,
  signBundle,
} from '@flotilla/shared';
import { and, desc, eq } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { bundles } from '../db/schema.js';
import type { BundleBus } from '../nats/bus.js';
import type { SigningKeyRing } from '../pki/signing-keys.js';

/** What a render produced for one cluster (the renderer's result satisfies it). */
export interface RenderedCluster {
  objects: KubeObject[];
  /** Directory in the repository that was rendered. */
  path: string;
  /** The commit it was rendered from. */
  commit: string;
}

/** The environment as the publisher needs it: its branch (resolved) and sync policy. */
export interface PublishEnvironment {
  name: string;
  branch: string;
  policy: SyncPolicy;
}

/** Outcome of publishing one cluster: a new generation, or unchanged content (digest dedupe). */
export type PublishOutcome =
  | { cluster: string; published: true; generation: number; digest: string }
  | { cluster: string; published: false; generation: number; digest: string };

/** Latest stored bundle of a cluster. */
export interface StoredBundle {
  cluster: string;
  generation: number;
  contentDigest: string;
  revision: string;
  envelope: Uint8Array;
  createdAt: Date;
}

export interface BundlePublisher {
  publishCluster(
    cluster: { name: string },
    render: RenderedCluster,
    env: PublishEnvironment,
  ): Promise<PublishOutcome>;
  latest(cluster: string): Promise<StoredBundle | undefined>;
}

export interface BundlePublisherOptions {
  db: Db;
  bus: BundleBus;
  /** Read at every publish, so a rotated key signs from the next bundle on. */
  signingKeys: () => SigningKeyRing;
  /** The source URL; credentials are stripped before it goes into a bundle. */
  sourceUrl: string;
  logger: Logger;
}

/**
 * Turns a render into a signed bundle for one cluster. A cluster gets a new generation only
 * when its content digest changed, so a commit that touches one environment publishes
 * nothing for the others. The envelope is stored before it is published; a stored bundle
 * whose publish failed is published again on the next call.
 */
export function createBundlePublisher(options: BundlePublisherOptions): BundlePublisher {
  const { db, bus, logger } = options;
  const latest = async (
    cluster: string,
  ): Promise<(StoredBundle & { publishedAt: Date | null }) | undefined> => {
    const [row] = await db
      .select()
      .from(bundles)
      .where(eq(bundles.cluster, cluster))
      .orderBy(desc(bundles.generation))
      .limit(1);
    return row;
  };
  return {
    latest,
    async publishCluster(cluster, render, env) {
      const digest = contentDigest(render.objects, env.policy);
      const last = await latest(cluster.name);
      if (last && last.contentDigest === digest) {
        if (!last.publishedAt) await publishStored(last);
        return { cluster: cluster.name, published: false, generation: last.generation, digest };
      }
      const generation = (last?.generation ?? 0) + 1;
      const bundle: Bundle = {
        cluster: cluster.name,
        environment: env.name,
        generation,
        revision: render.commit,
        source: { url: redactUrl(options.sourceUrl), branch: env.branch, path: render.path },
        createdAt: new Date().toISOString(),
        policy: env.policy,
        contentDigest: digest,
        objects: render.objects,
      };
      const envelope = encodeEnvelope(signWithRing(bundle, options.signingKeys()));
      const [stored] = await db
        .insert(bundles)
        .values({
          cluster: cluster.name,
          generation,
          contentDigest: digest,
          revision: render.commit,
          envelope,
        })
        .returning();
      await publishStored(stored!);
      logger.info({ cluster: cluster.name, generation, revision: render.commit }, 'new generation');
      return { cluster: cluster.name, published: true, generation, digest };
    },
  };

  async function publishStored(row: { cluster: string; generation: number; envelope: Uint8Array }) {
    await bus.publish(row.cluster, row.generation, row.envelope);
    await db
      .update(bundles)
      .set({ publishedAt: new Date() })
      .where(and(eq(bundles.cluster, row.cluster), eq(bundles.generation, row.generation)));
  }
}

/**
 * Signs with the newest key first and every older active key after it, so an agent that
 * pinned its keys before a rotation still trusts bundles signed after it.
 */
export function signWithRing(bundle: Bundle, ring: SigningKeyRing): Envelope {
  const envelope = signBundle(bundle, ring.current);
  for (const key of ring.all) {
    if (key.keyId === ring.current.keyId) continue;
    envelope.signatures.push(...signBundle(bundle, key).signatures);
  }
  return envelope;
}
