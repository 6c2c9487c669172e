import { InvalidError, type Logger } from '@flotilla/shared';
import { assertAgeRecipient } from '@flotilla/shared/sops';
import { and, gte, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { ageRecipients, clusters } from '../db/schema.js';

/** One cluster's age recipient, as `flotilla secret recipients` lists it. */
export interface ClusterRecipient {
  cluster: string;
  environment: string;
  recipient: string;
  registeredAt: string;
}

/** What SOPS files for some environments are encrypted to. */
export interface EnvironmentRecipients {
  environments: string[];
  /** Every cluster of those environments whose agent registered a recipient. */
  clusters: ClusterRecipient[];
  /** Clusters of those environments without one yet (not joined, or an agent from before). */
  missing: string[];
  /** Offline recovery recipients from the hub's configuration: they open every file, for rekey. */
  recovery: string[];
  /** clusters' and recovery recipients, each once: what `flotilla secret encrypt` encrypts to. */
  recipients: string[];
}

export interface RecipientStore {
  /** Records (or replaces) a cluster's recipient; a bad one is refused naming the field. */
  record(cluster: string, recipient: string): Promise<void>;
  forEnvironments(environments: string[]): Promise<EnvironmentRecipients>;
}

export interface RecipientStoreOptions {
  db: Db;
  /** Offline recovery recipients (`age1…`) from the hub's configuration. */
  recovery?: string[];
  logger?: Logger;
}

/**
 * The age recipients of the fleet: each agent's public key, registered at join and with each
 * credential rotation. The hub never holds an identity that opens a SOPS file: it hands out
 * public keys, and encryption happens where the clear value already is (the user's machine).
 */
export function createRecipientStore(options: RecipientStoreOptions): RecipientStore {
  const { db } = options;
  const recovery = [...new Set(options.recovery ?? [])];
  for (const [i, r] of recovery.entries()) assertAgeRecipient(r, `recovery recipient ${i + 1}`);
  return {
    async record(cluster, recipient) {
      assertAgeRecipient(recipient, 'age_recipient');
      await db
        .insert(ageRecipients)
        .values({ cluster, recipient })
        .onConflictDoUpdate({
          target: ageRecipients.cluster,
          set: { recipient, registeredAt: sql`now()` },
        });
      options.logger?.info({ cluster, recipient }, 'age recipient registered');
    },
    async forEnvironments(environments) {
      if (environments.length === 0) throw new InvalidError('env', 'name at least one environment');
      const members = await db
        .select({ name: clusters.name, environment: clusters.environment })
        .from(clusters)
        .where(inArray(clusters.environment, environments))
        .orderBy(clusters.name);
      // A recipient older than its cluster belongs to an agent of a removed cluster of that name.
      const rows = await db
        .select({
          cluster: ageRecipients.cluster,
          recipient: ageRecipients.recipient,
          registeredAt: ageRecipients.registeredAt,
          environment: clusters.environment,
        })
        .from(ageRecipients)
        .innerJoin(
          clusters,
          and(
            sql`${clusters.name} = ${ageRecipients.cluster}`,
            gte(ageRecipients.registeredAt, clusters.createdAt),
          ),
        )
        .where(inArray(clusters.environment, environments))
        .orderBy(ageRecipients.cluster);
      const known = new Set(rows.map((r) => r.cluster));
      const list = rows.map((r) => ({
        cluster: r.cluster,
        environment: r.environment,
        recipient: r.recipient,
        registeredAt: r.registeredAt.toISOString(),
      }));
      return {
        environments,
        clusters: list,
        missing: members.filter((m) => !known.has(m.name)).map((m) => m.name),
        recovery,
        recipients: [...new Set([...list.map((c) => c.recipient), ...recovery])],
      };
    },
  };
}
