import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect, type DetailedPeerCertificate } from 'node:tls';
import { FlotillaError, InvalidError } from '@flotilla/shared';
import { type ChannelCredentials, credentials } from '@grpc/grpc-js';

/** `HOST:PORT` split; IPv6 hosts in brackets (`[::1]:7443`). */
export function parseHubAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address.trim());
  const port = Number(m?.[3]);
  if (!m || !port || port > 65535) throw new InvalidError('--hub', `"${address}" is not HOST:PORT`);
  return { host: (m[1] ?? m[2])!, port };
}

/** `sha256:<hex>` of a certificate's DER bytes: the form `--ca-hash` takes. */
export function certificateHash(der: Uint8Array): string {
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

function parseCaHash(caHash: string): string {
  const m = /^sha256:([0-9a-fA-F]{64})$/.exec(caHash.trim());
  if (!m) throw new InvalidError('--ca-hash', `"${caHash}" is not sha256:<64 hex digits>`);
  return `sha256:${m[1]!.toLowerCase()}`;
}

/**
 * Learns the hub's CA by trust on first use, made safe by a hash the operator got out of
 * band: connect without verification, walk the chain the hub presents, and keep only the
 * certificate whose DER hashes to `caHash`. Nothing else is trusted afterwards; the real
 * TLS verification happens in grpc-js with this CA as its only root.
 */
export async function fetchPinnedCa(
  address: string,
  caHash: string,
  options: { timeoutMs?: number } = {},
): Promise<string> {
  const wanted = parseCaHash(caHash);
  const { host, port } = parseHubAddress(address);
  const chain = await new Promise<DetailedPeerCertificate[]>((resolve, reject) => {
    const socket = connect({
      host,
      port,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      ...(isIP(host) ? {} : { servername: host }),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new FlotillaError('unavailable', `hub ${address}: TLS handshake timed out`));
    }, options.timeoutMs ?? 15_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const certs: DetailedPeerCertificate[] = [];
      const seen = new Set<string>();
      let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      while (cert?.raw && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        certs.push(cert);
        cert = cert.issuerCertificate;
      }
      socket.destroy();
      resolve(certs);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new FlotillaError('unavailable', `hub ${address}: TLS connection failed: ${err.message}`, {
          cause: err,
        }),
      );
    });
  });
  const match = chain.find((c) => certificateHash(c.raw) === wanted);
  if (!match) {
    throw new FlotillaError(
      'permission-denied',
      `hub ${address}: no certificate in the chain it presents matches --ca-hash ${wanted} ` +
        `(it presents ${chain.map((c) => certificateHash(c.raw)).join(', ') || 'none'}); refusing to join`,
    );
  }
  // Whatever the hash names becomes the only root, a CA or a self-signed hub certificate alike.
  return new X509Certificate(match.raw).toString();
}

/**
 * gRPC channel credentials that trust only the pinned hub CA. The host name check stays
 * on: the hub's certificate must name the address agents dial (DNS name or IP SAN).
 */
export function hubChannelCredentials(caPem: string): ChannelCredentials {
  return credentials.createSsl(Buffer.from(caPem));
}
