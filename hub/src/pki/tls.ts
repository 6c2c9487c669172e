import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { readTextIfExists, writeFileAtomic } from '../util/files.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as never);

/** The hub's gRPC TLS material: a self-signed CA and a server certificate it issued. */
export interface HubTls {
  caPem: string;
  /** Server certificate followed by the CA: what the server presents. */
  chainPem: string;
  keyPem: string;
  /** `sha256:<hex of sha256(CA DER)>`: what an agent pins at join. */
  caHash: string;
  /** The SANs the server certificate carries. */
  sans: string[];
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** The CA hash an agent checks: sha256 over the CA certificate's DER bytes. */
export function caHashOf(caPem: string): string {
  const der = new x509.X509Certificate(caPem).rawData;
  return `sha256:${createHash('sha256').update(new Uint8Array(der)).digest('hex')}`;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decode(pem)[0]!, ALG, true, ['sign']);
}

function defaultSans(extra: readonly string[]): string[] {
  return [...new Set(['127.0.0.1', '::1', 'localhost', hostname(), ...extra])];
}

const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+:[0-9a-fA-F:]*)$/;

/**
 * Loads the CA and server certificate from the data dir, creating them when missing. The
 * server certificate is re-issued (by the same CA, so the CA hash agents pinned stays valid)
 * when the requested SANs are not all in it.
 */
/** Where the hub CA's certificate lives: what the CLI trusts through FLOTILLA_CA_FILE. */
export function caCertPath(dataDir: string): string {
  return join(dataDir, 'tls', 'ca.pem');
}

export async function ensureTls(dataDir: string, extraSans: readonly string[] = []): Promise<HubTls> {
  const dir = join(dataDir, 'tls');
  const sans = defaultSans(extraSans);
  let caPem = readTextIfExists(caCertPath(dataDir));
  let caKeyPem = readTextIfExists(join(dir, 'ca-key.pem'));
  if (!caPem || !caKeyPem) {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=Flotilla hub CA',
      keys,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 10 * 365 * 24 * 3600_000),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    caPem = ca.toString('pem');
    caKeyPem = await exportKeyPem(keys.privateKey);
    writeFileAtomic(join(dir, 'ca-key.pem'), caKeyPem, true);
    writeFileAtomic(caCertPath(dataDir), caPem);
  }
  let certPem = readTextIfExists(join(dir, 'server.pem'));
  let keyPem = readTextIfExists(join(dir, 'server-key.pem'));
  const current = readTextIfExists(join(dir, 'server-sans.json'));
  const have: string[] = current ? JSON.parse(current) : [];
  if (!certPem || !keyPem || !sans.every((s) => have.includes(s))) {
    const ca = new x509.X509Certificate(caPem);
    const caKey = await importKeyPem(caKeyPem);
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.create({
      subject: 'CN=flotilla-hub',
      issuer: ca.subject,
      publicKey: keys.publicKey,
      signingKey: caKey,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 2 * 365 * 24 * 3600_000),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(
          sans.map((s) => ({ type: IP.test(s) ? 'ip' : 'dns', value: s }) as x509.JsonGeneralName),
        ),
        await x509.AuthorityKeyIdentifierExtension.create(ca),
      ],
    });
    certPem = cert.toString('pem');
    keyPem = await exportKeyPem(keys.privateKey);
    writeFileAtomic(join(dir, 'server-key.pem'), keyPem, true);
    writeFileAtomic(join(dir, 'server.pem'), certPem);
    writeFileAtomic(join(dir, 'server-sans.json'), JSON.stringify(sans));
  }
  return {
    caPem,
    chainPem: `${certPem.trim()}\n${caPem.trim()}\n`,
    keyPem,
    caHash: caHashOf(caPem),
    sans: JSON.parse(readTextIfExists(join(dir, 'server-sans.json')) ?? '[]'),
  };
}
