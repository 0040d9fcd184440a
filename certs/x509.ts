/**
 * X.509 for signing certificates, with node-forge for building certificates and reading PKCS#12,
 * and node:crypto for keys and signature checks.
 *
 * Vietnamese CAs put the tax code in the subject as `UID=MST:<tax code>` (OID 0.9.2342.19200300.100.1.1)
 * with the legal name in CN. Non-ASCII names must be UTF8String: forge's default (PrintableString)
 * writes corrupt DER for Vietnamese text.
 */
import crypto from 'node:crypto';
import forge from 'node-forge';

export const UID_OID = '0.9.2342.19200300.100.1.1';

export interface KeyPairPem {
  keyPem: string;
  publicPem: string;
}

/** RSA-2048 from node:crypto (native; forge's pure-JS keygen is ~10x slower). */
export function generateRsaKey(): KeyPairPem {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

type Attr = { name?: string; type?: string; value: string; valueTagClass?: number };

function utf8(attrs: Attr[]): forge.pki.CertificateField[] {
  return attrs.map((a) => ({ ...a, valueTagClass: forge.asn1.Type.UTF8 })) as unknown as forge.pki.CertificateField[];
}

function serialHex(): string {
  // Positive 16-byte serial (leading byte < 0x80).
  const b = crypto.randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x10;
  return b.toString('hex');
}

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export function createCa(opts: { commonName: string; organization: string; notBefore: Date; years: number }): CaMaterial {
  const keys = generateRsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serialHex();
  cert.validity.notBefore = opts.notBefore;
  cert.validity.notAfter = new Date(opts.notBefore.getTime() + opts.years * 365 * 86400_000);
  const subject = utf8([
    { name: 'countryName', value: 'VN' },
    { name: 'organizationName', value: opts.organization },
    { name: 'commonName', value: opts.commonName },
  ]);
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

export interface LeafOptions {
  ca: CaMaterial;
  commonName: string;
  taxCode: string;
  province?: string;
  notBefore: Date;
  notAfter: Date;
  /** Key usage of the leaf; signing certificates carry digitalSignature + nonRepudiation. */
  keyUsage?: { digitalSignature?: boolean; nonRepudiation?: boolean; keyEncipherment?: boolean };
  /** Use this key instead of generating one. */
  keyPem?: string;
}

/** Issues a document-signing certificate shaped like a Vietnamese CA's organisation certificate. */
export function issueLeaf(o: LeafOptions): CaMaterial {
  const keyPem = o.keyPem ?? generateRsaKey().keyPem;
  const publicPem = crypto.createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString();
  const caCert = forge.pki.certificateFromPem(o.ca.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = serialHex();
  cert.validity.notBefore = o.notBefore;
  cert.validity.notAfter = o.notAfter;
  cert.setSubject(
    utf8([
      { name: 'countryName', value: 'VN' },
      ...(o.province ? [{ name: 'stateOrProvinceName', value: o.province }] : []),
      { name: 'commonName', value: o.commonName },
      { type: UID_OID, value: `MST:${o.taxCode}` },
    ]),
  );
  // forge reads UTF8String values back as raw UTF-8 bytes; decode them so they are not encoded twice.
  cert.setIssuer(
    caCert.subject.attributes.map((a) => ({
      type: a.type,
      value: (a.valueTagClass as unknown) === forge.asn1.Type.UTF8 ? forge.util.decodeUtf8(String(a.value)) : a.value,
      valueTagClass: a.valueTagClass,
    })) as forge.pki.CertificateField[],
  );
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', critical: true, ...(o.keyUsage ?? { digitalSignature: true, nonRepudiation: true }) },
    { name: 'extKeyUsage', emailProtection: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(o.ca.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

export interface CertInfo {
  subject: string;
  issuer: string;
  serial: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  /** The tax code from `UID=MST:…` (or `MST:` in O/CN as some CAs write it), if any. */
  taxCode: string | null;
  commonName: string | null;
  isCa: boolean;
  keyUsage: { digitalSignature: boolean; nonRepudiation: boolean } | null;
}

function dn(attrs: forge.pki.CertificateField[]): string {
  return attrs
    .map((a) => {
      const label = a.shortName ?? (a.type === UID_OID ? 'UID' : a.type);
      return `${label}=${decode(a)}`;
    })
    .reverse()
    .join(', ');
}

function decode(a: forge.pki.CertificateField): string {
  const v = String(a.value ?? '');
  try {
    return (a.valueTagClass as unknown) === forge.asn1.Type.UTF8 ? forge.util.decodeUtf8(v) : v;
  } catch {
    return v;
  }
}

export function certInfo(pem: string): CertInfo {
  const cert = forge.pki.certificateFromPem(pem);
  const der = forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes();
  const attrs = cert.subject.attributes;
  let taxCode: string | null = null;
  for (const a of attrs) {
    const m = /MST[:=]\s*([0-9]{10}(?:-[0-9]{3})?)/.exec(decode(a));
    if (m && (a.type === UID_OID || taxCode === null)) taxCode = m[1]!;
  }
  const cn = attrs.find((a) => a.shortName === 'CN');
  const ku = cert.getExtension('keyUsage') as { digitalSignature?: boolean; nonRepudiation?: boolean } | null;
  const bc = cert.getExtension('basicConstraints') as { cA?: boolean } | null;
  return {
    subject: dn(attrs),
    issuer: dn(cert.issuer.attributes),
    serial: cert.serialNumber,
    fingerprint: crypto.createHash('sha256').update(Buffer.from(der, 'binary')).digest('hex'),
    notBefore: cert.validity.notBefore,
    notAfter: cert.validity.notAfter,
    taxCode,
    commonName: cn ? decode(cn) : null,
    isCa: Boolean(bc?.cA),
    keyUsage: ku ? { digitalSignature: Boolean(ku.digitalSignature), nonRepudiation: Boolean(ku.nonRepudiation) } : null,
  };
}

/** Base64 DER of a PEM certificate (the X509Certificate element's content). */
export function certBase64(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

/** Splits a PEM bundle into its certificates. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((s) => s + '\n') ?? [];
}

export function toPemCert(base64: string): string {
  const body =
    base64
      .replace(/\s+/g, '')
      .match(/.{1,64}/g)
      ?.join('\n') ?? '';
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}
