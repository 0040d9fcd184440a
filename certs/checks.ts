/**
 * The checks a signing certificate passes on import and before every use, each failing with a
 * stable error code: the key matches the certificate, the certificate is valid now (not expired,
 * not yet valid), its key usage allows signing, it names the tenant's tax code, and it chains up
 * to a configured trust anchor (the dev CA, or the Vietnamese roots an operator installs).
 */
import crypto from 'node:crypto';
import { FeegateError } from '../gateway/errors.js';
import { certInfo, type CertInfo } from './x509.js';

export interface CertCheckInput {
  certPem: string;
  /** Intermediate certificates offered with the leaf (untrusted: only used to build the path). */
  chainPems: string[];
  /** Trusted roots (and any certificate the operator chose to trust directly). */
  anchors: string[];
  at: Date;
  keyPem?: string;
  /** The tenant's tax code, when the certificate must name it (`UID=MST:…`). */
  taxCode?: string;
}

export interface CertCheckResult {
  info: CertInfo;
  /** Subjects from the leaf up to the anchor. */
  path: string[];
}

function x509(pem: string): crypto.X509Certificate {
  try {
    return new crypto.X509Certificate(pem);
  } catch (err) {
    throw new FeegateError('FEEGATE_ERR_CERT_INVALID', `Not a readable X.509 certificate: ${(err as Error).message}`);
  }
}

function validAt(c: crypto.X509Certificate, at: Date): boolean {
  return new Date(c.validFrom).getTime() <= at.getTime() && at.getTime() <= new Date(c.validTo).getTime();
}

/** Builds the path leaf → … → anchor and checks each signature and validity. */
export function chainToAnchor(certPem: string, chainPems: string[], anchors: string[], at: Date): string[] {
  const leaf = x509(certPem);
  const pool = chainPems.map(x509);
  const roots = anchors.map(x509);
  const path = [leaf.subject];
  let cur = leaf;
  for (let depth = 0; depth < 8; depth++) {
    // Trusted directly (the anchor itself, same certificate).
    if (roots.some((r) => r.fingerprint256 === cur.fingerprint256)) return path;
    const root = roots.find((r) => cur.checkIssued(r) && cur.verify(r.publicKey));
    if (root) {
      if (!validAt(root, at))
        throw new FeegateError('FEEGATE_ERR_CERT_UNTRUSTED', `The trust anchor ${root.subject.replace(/\n/g, ', ')} is not valid at ${at.toISOString()}`);
      path.push(root.subject);
      return path;
    }
    const next = pool.find((c) => c.ca && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!next) break;
    if (!validAt(next, at))
      throw new FeegateError('FEEGATE_ERR_CERT_UNTRUSTED', `The intermediate ${next.subject.replace(/\n/g, ', ')} is not valid at ${at.toISOString()}`);
    path.push(next.subject);
    cur = next;
  }
  throw new FeegateError('FEEGATE_ERR_CERT_UNTRUSTED', 'The certificate does not chain up to a configured trust anchor', {
    subject: leaf.subject.replace(/\n/g, ', '),
    issuer: leaf.issuer.replace(/\n/g, ', '),
  });
}

export function checkSigningCert(i: CertCheckInput): CertCheckResult {
  const cert = x509(i.certPem);
  const info = certInfo(i.certPem);
  if (i.keyPem !== undefined) {
    let key: crypto.KeyObject;
    try {
      key = crypto.createPrivateKey(i.keyPem);
    } catch (err) {
      throw new FeegateError('FEEGATE_ERR_CERT_INVALID', `Not a readable private key: ${(err as Error).message}`);
    }
    if (!cert.checkPrivateKey(key)) throw new FeegateError('FEEGATE_ERR_CERT_KEY_MISMATCH', 'The private key does not belong to the certificate');
  }
  if (i.at < info.notBefore) {
    throw new FeegateError('FEEGATE_ERR_CERT_NOT_YET_VALID', `The certificate is valid from ${info.notBefore.toISOString()}`, {
      not_before: info.notBefore.toISOString(),
    });
  }
  if (i.at > info.notAfter) {
    throw new FeegateError('FEEGATE_ERR_CERT_EXPIRED', `The certificate expired at ${info.notAfter.toISOString()}`, { not_after: info.notAfter.toISOString() });
  }
  if (info.isCa || (info.keyUsage && !info.keyUsage.digitalSignature && !info.keyUsage.nonRepudiation)) {
    throw new FeegateError('FEEGATE_ERR_CERT_KEY_USAGE', "The certificate's key usage does not allow signing documents (digitalSignature / nonRepudiation)");
  }
  if (i.taxCode && info.taxCode !== i.taxCode) {
    throw new FeegateError('FEEGATE_ERR_CERT_TAX_CODE_MISMATCH', `The certificate names tax code ${info.taxCode ?? '(none)'}, the unit's is ${i.taxCode}`);
  }
  const path = chainToAnchor(i.certPem, i.chainPems, i.anchors, i.at);
  return { info, path: path.map((s) => s.replace(/\n/g, ', ')) };
}
