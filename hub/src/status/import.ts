import {
  decodeEnvelope,
  FlotillaError,
  keyIdOf,
  publicKeyFromRaw,
  trustedKeys,
  verifyStatusExport,
} from '@flotilla/shared';
import { eq } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/database.js';
import { clusterStatus } from '../db/schema.js';
import type { StatusIngest } from './ingest.js';

/** What an air-gapped status file brought in. */
export interface StatusImportOutcome {
  cluster: string;
  exportedAt: string;
  stored: number;
  duplicates: number;
}

export interface StatusImporter {
  import(bytes: Uint8Array, actor: string): Promise<StatusImportOutcome>;
}

export interface StatusImporterOptions {
  db: Db;
  ingest: StatusIngest;
  audit: AuditLog;
  /** The agent public keys stored at registration for a cluster. */
  agentKeys(cluster: string): Promise<Uint8Array[]>;
}

/**
 * Imports a status file carried out of an air-gapped cluster: verified against the agent key
 * stored at registration, then ingested through the same path as the live stream
 * (idempotent by seq). A file older than what the hub already has is refused.
 */
export function createStatusImporter(options: StatusImporterOptions): StatusImporter {
  const { db, ingest, audit } = options;
  return {
    async import(bytes, actor) {
      let claimed = '';
      try {
        const payload = JSON.parse(Buffer.from(decodeEnvelope(bytes).payload, 'base64').toString('utf8'));
        claimed = typeof payload?.cluster === 'string' ? payload.cluster : '';
      } catch {
        // verifyStatusExport names what is wrong below.
      }
      const raw = claimed ? await options.agentKeys(claimed) : [];
      const keys = trustedKeys(raw.map((k) => ({ keyId: keyIdOf(publicKeyFromRaw(k)), publicKey: k })));
      let file: ReturnType<typeof verifyStatusExport>;
      try {
        file = verifyStatusExport(bytes, (cluster) =>
          cluster === claimed && keys.size > 0 ? keys : undefined,
        );
      } catch (err) {
        await audit.record({
          action: 'status.import',
          actor,
          cluster: claimed || null,
          outcome: 'refused',
          detail: err instanceof Error ? err.message : String(err),
        });
        throw err;
      }
      const [current] = await db.select().from(clusterStatus).where(eq(clusterStatus.cluster, file.cluster));
      const newest = Math.max(0, ...file.reports.map((r) => Number(r.seq)));
      if (current?.lastSeq != null && file.reports.length > 0 && newest < current.lastSeq) {
        const detail = `status file of ${file.exportedAt} is older than what the hub has (seq ${newest} < ${current.lastSeq})`;
        await audit.record({
          action: 'status.import',
          actor,
          cluster: file.cluster,
          outcome: 'refused',
          detail,
        });
        throw new FlotillaError('conflict', `cluster ${file.cluster}: ${detail}`);
      }
      let stored = 0;
      let duplicates = 0;
      for (const report of [...file.reports].sort((a, b) => Number(a.seq - b.seq))) {
        const outcome = await ingest.ingest(file.cluster, report, 'import');
        if (outcome.stored) stored++;
        else duplicates++;
      }
      await audit.record({
        action: 'status.import',
        actor,
        cluster: file.cluster,
        outcome: 'ok',
        detail: `${stored} report(s) stored, ${duplicates} duplicate(s), exported ${file.exportedAt}`,
      });
      return { cluster: file.cluster, exportedAt: file.exportedAt, stored, duplicates };
    },
  };
}
