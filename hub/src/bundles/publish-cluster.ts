import {
  type Bundle,
  contentDigest,
  type Envelope,
  encodeEnvelope,
  errorMessage,
  type KubeObject,
  type Logger,
  redactUrl,
  type SyncPolicy,
  signBundle,
} from '@flotilla/shared';
import { desc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { bundles } from '../db/schema.js';
import { unnestInsert } from '../db/unnest.js';
import type { BundleBus } from '../nats/bus.js';
import type { SigningKeyRing } from '../pki/signing-keys.js';
import { mapConcurrent } from '../util/concurrent.js';

/** What a render produced for one cluster (the renderer's result satisfies it). */
export interface RenderedCluster {
  objects: KubeObject[];
  /** Directory in the repository that was rendered. */
  path: string;
  /** The commit it was rendered from. */
  commit: string;
  /** The renderer's input key combined with the policy; stored so a later pass can skip the same inputs. */
  inputKey?: string;
  /** Objects from fleet-wide apps: identity key → `app/NAME`; the rest are the environment's. */
  sources?: Record<string, string>;
  /** What the hub warns of in this content (plain Secrets), stored with the bundle for fleet status. */
  warnings?: string[];
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

/** What a publish pass needs to know of a cluster's newest bundle, without its envelope. */
export interface BundleHead {
  generation: number;
  contentDigest: string;
  inputKey: string | null;
  published: boolean;
}

/** One cluster's render to publish, with its newest bundle as read at the start of the pass. */
export interface PublishRequest {
  cluster: { name: string };
  render: RenderedCluster;
  env: PublishEnvironment;
  /** The cluster's newest bundle; undefined when it has none. */
  head: BundleHead | undefined;
  /** contentDigest(render.objects, env.policy) when the caller has computed it already. */
  digest?: string;
}

export interface BundlePublisher {
  /**
   * Publishes many clusters' renders with a handful of statements in all (one insert, one
   * update), however many clusters: what makes a commit reach a fleet of thousands quickly.
   * The caller must be the only one publishing these clusters (the pass's leader or claim).
   */
  publishClusters(
    requests: PublishRequest[],
  ): Promise<Array<PublishOutcome | { cluster: string; error: string }>>;
  latest(cluster: string): Promise<StoredBundle | undefined>;
  /** The newest stored bundle of each named cluster that has one, in one query. */
  latestOf(clusters: string[]): Promise<Map<string, StoredBundle>>;
  /** The newest bundle of every cluster (or of the clusters named), in one query. */
  heads(clusters?: string[]): Promise<Map<string, BundleHead>>;
}

export interface BundlePublisherOptions {
  db: Db;
  bus: BundleBus;
  /** Read at every publish, so a rotated key signs from the next bundle on. */
  signingKeys: () => SigningKeyRing;
  /** The source URL; credentials are stripped before it goes into a bundle. */
  sourceUrl: string;
  logger: Logger;
  /**
   * Bundles in flight on NATS at once; default 256, more than a batch holds. Publishes started
   * in the same tick leave in one socket write, and the heads that follow a read of many acks
   * in one more: a few writes a batch instead of one per publish.
   */
  publishConcurrency?: number;
}

/** Rows per insert statement: bounds one statement's size (envelopes travel in it). */
const INSERT_CHUNK = 500;

/** The columns a new bundle row sets (the rest take their defaults). */
const BUNDLE_KEYS = [
  'cluster',
  'generation',
  'contentDigest',
  'revision',
  'envelope',
  'inputKey',
  'sources',
  'warnings',
] as const;

/**
 * Turns renders into signed bundles. A cluster gets a new generation only when its content
 * digest changed, so a commit that touches one environment publishes nothing for the others.
 * Envelopes are stored before they are published; a stored bundle whose publish failed is
 * published again on the next pass.
 */
export function createBundlePublisher(options: BundlePublisherOptions): BundlePublisher {
  const { db, bus, logger } = options;
  const publishConcurrency = options.publishConcurrency ?? 256;
  const latest = async (
    cluster: string,
  ): Promise<(StoredBundle & { publishedAt: Date | null; inputKey: string | null }) | undefined> => {
    const [row] = await db
      .select()
      .from(bundles)
      .where(eq(bundles.cluster, cluster))
      .orderBy(desc(bundles.generation))
      .limit(1);
    return row;
  };

  const latestOf: BundlePublisher['latestOf'] = async (names) => {
    if (names.length === 0) return new Map();
    const rows = await db
      .selectDistinctOn([bundles.cluster], {
        cluster: bundles.cluster,
        generation: bundles.generation,
        contentDigest: bundles.contentDigest,
        revision: bundles.revision,
        envelope: bundles.envelope,
        createdAt: bundles.createdAt,
      })
      .from(bundles)
      .where(inArray(bundles.cluster, names))
      .orderBy(bundles.cluster, desc(bundles.generation));
    return new Map(rows.map((r) => [r.cluster, r]));
  };

  const heads: BundlePublisher['heads'] = async (names) => {
    if (names && names.length === 0) return new Map();
    const rows = await db
      .selectDistinctOn([bundles.cluster], {
        cluster: bundles.cluster,
        generation: bundles.generation,
        contentDigest: bundles.contentDigest,
        inputKey: bundles.inputKey,
        publishedAt: bundles.publishedAt,
      })
      .from(bundles)
      .where(names ? inArray(bundles.cluster, names) : undefined)
      .orderBy(bundles.cluster, desc(bundles.generation));
    return new Map(
      rows.map((r) => [
        r.cluster,
        {
          generation: r.generation,
          contentDigest: r.contentDigest,
          inputKey: r.inputKey,
          published: r.publishedAt !== null,
        },
      ]),
    );
  };

  async function publishClusters(
    requests: PublishRequest[],
  ): Promise<Array<PublishOutcome | { cluster: string; error: string }>> {
    const outcomes = new Map<string, PublishOutcome | { cluster: string; error: string }>();
    const fresh: Array<typeof bundles.$inferInsert & { generation: number }> = [];
    const republish: PublishRequest[] = [];
    const rememberKeys: Array<{ cluster: string; generation: number; inputKey: string }> = [];
    const ring = options.signingKeys();
    for (const { cluster, render, env, head, digest: known } of requests) {
      const digest = known ?? contentDigest(render.objects, env.policy);
      if (head && head.contentDigest === digest) {
        if (!head.published) republish.push({ cluster, render, env, head });
        // Other inputs, same content (e.g. a comment changed): remember them, so the next pass skips them.
        if (render.inputKey && head.inputKey !== render.inputKey)
          rememberKeys.push({
            cluster: cluster.name,
            generation: head.generation,
            inputKey: render.inputKey,
          });
        outcomes.set(cluster.name, {
          cluster: cluster.name,
          published: false,
          generation: head.generation,
          digest,
        });
        continue;
      }
      const generation = (head?.generation ?? 0) + 1;
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
      fresh.push({
        cluster: cluster.name,
        generation,
        contentDigest: digest,
        revision: render.commit,
        envelope: encodeEnvelope(signWithRing(bundle, ring)),
        inputKey: render.inputKey ?? null,
        sources: render.sources && Object.keys(render.sources).length > 0 ? render.sources : null,
        warnings: render.warnings?.length ? render.warnings : null,
      });
    }

    for (let i = 0; i < fresh.length; i += INSERT_CHUNK) {
      const chunk = fresh.slice(i, i + INSERT_CHUNK);
      // One array parameter per column: drizzle's VALUES list of thousands of parameters cost
      // more CPU than PostgreSQL storing the rows.
      const { rows: inserted } = (await db.execute(
        sql`${unnestInsert(bundles, BUNDLE_KEYS, chunk)} on conflict do nothing returning cluster`,
      )) as unknown as { rows: Array<{ cluster: string }> };
      const stored = new Set(inserted.map((r) => r.cluster));
      for (const row of chunk)
        if (!stored.has(row.cluster))
          outcomes.set(row.cluster, {
            cluster: row.cluster,
            error: `cluster ${row.cluster}: generation ${row.generation} was stored by another publisher; the next pass renders it again`,
          });
    }
    if (rememberKeys.length > 0)
      await db.execute(sql`update bundles set input_key = v.input_key
        from (values ${sql.join(
          rememberKeys.map((k) => sql`(${k.cluster}, ${k.generation}::integer, ${k.inputKey})`),
          sql`, `,
        )}) as v(cluster, generation, input_key)
        where bundles.cluster = v.cluster and bundles.generation = v.generation`);

    // Stored but never published (NATS was down): send the stored envelope, not a new one.
    const pending = [
      ...fresh.filter((row) => !outcomes.has(row.cluster)),
      ...(await mapConcurrent(republish, 4, async (r) => latest(r.cluster.name))).filter(
        (row): row is NonNullable<typeof row> => row !== undefined && !row.publishedAt,
      ),
    ];
    const sent = await mapConcurrent(pending, publishConcurrency, async (row) => {
      try {
        await bus.publish(row.cluster, row.generation, row.envelope, { flush: false });
        return row;
      } catch (err) {
        outcomes.set(row.cluster, { cluster: row.cluster, error: errorMessage(err) });
        return undefined;
      }
    });
    // The bundles are in JetStream (each head acknowledged); their notifies go out in one write.
    // A notify lost with the connection only delays an agent to its next poll.
    if (pending.length > 0)
      await bus
        .flush()
        .catch((err) =>
          logger.warn({ err: errorMessage(err) }, 'nats: flushing the notifies of a batch failed'),
        );
    const published = sent.filter((row): row is NonNullable<typeof row> => row !== undefined);
    if (published.length > 0)
      await db.execute(sql`update bundles set published_at = now()
        where (cluster, generation) in (${sql.join(
          published.map((r) => sql`(${r.cluster}, ${r.generation}::integer)`),
          sql`, `,
        )})`);
    let fresher = 0;
    for (const row of fresh) {
      if (outcomes.has(row.cluster)) continue;
      fresher++;
      outcomes.set(row.cluster, {
        cluster: row.cluster,
        published: true,
        generation: row.generation,
        digest: row.contentDigest,
      });
      logger.debug(
        { cluster: row.cluster, generation: row.generation, revision: row.revision },
        'new generation',
      );
    }
    if (fresher > 0)
      logger.info(
        {
          bundles: fresher,
          revisions: [...new Set(fresh.map((r) => r.revision))],
          clusters: fresh.slice(0, 5).map((r) => `${r.cluster}@${r.generation}`),
        },
        'new generations published',
      );
    return requests.map((r) => outcomes.get(r.cluster.name)!);
  }

  return {
    latest,
    latestOf,
    heads,
    publishClusters,
  };
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
