import { formatIdentity, identityOf, type KubeObject } from '@flotilla/shared';
import { decryptSopsDocument, isSopsDocument, SopsError } from '@flotilla/shared/sops';
import type { ObjectDecoder } from '../reconcile/index.js';

/**
 * Decrypts SOPS-encrypted Secrets of a bundle just before apply, with age identities that
 * live only in this cluster (the agent's own, created at join, and any the operator gives).
 * Only core v1 Secrets may be encrypted: drift of any other kind is reported with its values,
 * so a clear value of another kind would leave the cluster in a status report. A refused
 * document fails alone, named by its identity; its message never carries a value.
 */
export function createSopsDecoder(identities: () => readonly string[]): ObjectDecoder {
  return {
    applies: (obj) => isSopsDocument(obj),
    async decode(obj) {
      const before = identityOf(obj);
      if (before.group !== '' || before.kind !== 'Secret')
        throw new SopsError(
          'unsupported',
          'SOPS document refused: only Secrets (v1) may be SOPS-encrypted; drift of other kinds is reported in clear',
        );
      let clear: KubeObject;
      try {
        clear = (await decryptSopsDocument(obj, identities())) as KubeObject;
      } catch (err) {
        if (err instanceof SopsError)
          throw new SopsError(err.reason, `SOPS document refused: ${err.message}`, { cause: err });
        throw err;
      }
      const after = (() => {
        try {
          return formatIdentity(identityOf(clear));
        } catch {
          return '';
        }
      })();
      if (after !== formatIdentity(before))
        throw new SopsError(
          'unsupported',
          'SOPS document refused: apiVersion, kind and metadata must stay unencrypted (encrypt with encrypted_regex ^(data|stringData)$)',
        );
      return clear;
    },
  };
}
