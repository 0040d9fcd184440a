/**
 * Reading signing material as Vietnamese CAs deliver it: a PKCS#12 file (.pfx/.p12, modern
 * PBES2/AES or legacy 3DES/RC2 encryption) or PEM (key and certificates in one or more files).
 * The result is the leaf certificate, its private key (PKCS#8 PEM, kept in memory only) and any
 * other certificates of the bundle (intermediates).
 */
import crypto from 'node:crypto';
import forge from 'node-forge';
import { FeegateError } from '../gateway/errors.js';
import { splitPem } from './x509.js';

export interface SigningMaterial {
  certPem: string;
  keyPem: string;
  chainPems: string[];
}

function pkcs8(keyPem: string): string {
  return crypto.createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Picks the certificate whose public key is the private key's; the others are the chain. */
function pairUp(keyPem: string, certPems: string[]): SigningMaterial {
  const key = crypto.createPrivateKey(keyPem);
  const leaf = certPems.find((c) => new crypto.X509Certificate(c).checkPrivateKey(key));
  if (!leaf) throw new FeegateError('FEEGATE_ERR_CERT_KEY_MISMATCH', 'No certificate in the file belongs to the private key');
  return { certPem: leaf, keyPem: pkcs8(keyPem), chainPems: certPems.filter((c) => c !== leaf) };
}

export function readPkcs12(file: Buffer, password: string): SigningMaterial {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(file.toString('binary')));
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password);
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    if (/MAC could not be verified|Invalid password|decrypt/i.test(msg)) {
      throw new FeegateError('FEEGATE_ERR_CERT_PASSWORD', 'The PKCS#12 password is wrong or the file is damaged');
    }
    throw new FeegateError('FEEGATE_ERR_CERT_INVALID', `Not a readable PKCS#12 file: ${msg}`);
  }
  const keyBags = [
    ...(p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!] ?? []),
    ...(p12.getBags({ bagType: forge.pki.oids.keyBag! })[forge.pki.oids.keyBag!] ?? []),
  ];
  const certBags = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!] ?? [];
  const key = keyBags.find((b) => b.key)?.key;
  if (!key) throw new FeegateError('FEEGATE_ERR_CERT_INVALID', 'The PKCS#12 file holds no private key');
  const certs = certBags.filter((b) => b.cert).map((b) => forge.pki.certificateToPem(b.cert!));
  if (!certs.length) throw new FeegateError('FEEGATE_ERR_CERT_INVALID', 'The PKCS#12 file holds no certificate');
  return pairUp(forge.pki.privateKeyToPem(key as forge.pki.rsa.PrivateKey), certs);
}

/** PEM text holding a private key (PKCS#1 or PKCS#8, unencrypted or with `password`) and certificates. */
export function readPem(text: string, password?: string): SigningMaterial {
  const keyMatch = /-----BEGIN (?:RSA |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |ENCRYPTED )?PRIVATE KEY-----/.exec(text);
  if (!keyMatch) throw new FeegateError('FEEGATE_ERR_CERT_INVALID', 'No private key in the PEM input');
  let keyPem: string;
  try {
    keyPem = crypto.createPrivateKey({ key: keyMatch[0], passphrase: password }).export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (err) {
    throw new FeegateError('FEEGATE_ERR_CERT_PASSWORD', `The private key could not be read: ${(err as Error).message}`);
  }
  const certs = splitPem(text);
  if (!certs.length) throw new FeegateError('FEEGATE_ERR_CERT_INVALID', 'No certificate in the PEM input');
  return pairUp(keyPem, certs);
}

/** A .p12/.pfx by its content (DER starts with a SEQUENCE), else PEM. */
export function readSigningMaterial(file: Buffer, password = ''): SigningMaterial {
  const text = file.toString('utf8');
  if (text.includes('-----BEGIN')) return readPem(text, password || undefined);
  return readPkcs12(file, password);
}

/** Writes a PKCS#12 (for tests and for exporting the dev certificates). */
export function writePkcs12(m: SigningMaterial, password: string, algorithm: 'aes256' | '3des' = 'aes256'): Buffer {
  const asn1 = forge.pkcs12.toPkcs12Asn1(
    forge.pki.privateKeyFromPem(m.keyPem),
    [m.certPem, ...m.chainPems].map((c) => forge.pki.certificateFromPem(c)),
    password,
    { algorithm, generateLocalKeyId: true, friendlyName: 'feegate signing' },
  );
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
}
