/**
 * XML-DSig for receipts, following the Vietnamese profile (e-receipt reference §3):
 * enveloped Signature (no prefix) appended under DSCKS/<signer>; C14N 1.0 inclusive; RSA-SHA256;
 * Reference 1 → the data element's Id (enveloped-signature + C14N, SHA-256); Reference 2 → an
 * <Object Id> holding SignatureProperties/SignatureProperty/SigningTime (Vietnam local time, no
 * zone); KeyInfo/X509Data with X509SubjectName and the certificates.
 * The key is a KeyObject and KeyInfo is built once per certificate: xml-crypto would otherwise
 * re-parse PEM on every call (3x slower).
 */
import { SignedXml } from 'xml-crypto';
import type { Signer } from '../certs/store.js';

export const ALG = {
  c14n: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  rsaSha1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
  signatureProperties: 'http://www.w3.org/2000/09/xmldsig#SignatureProperties',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

/** Vietnam local time without a zone, as the profile writes SigningTime: 2026-03-10T09:00:00. */
export function vnLocalTime(d: Date): string {
  return new Date(d.getTime() + 7 * 3600_000).toISOString().slice(0, 19);
}

export function signDocument(xml: string, doc: { dataId: string; dataXPath: string; signerXPath: string }, signer: Signer, signingTime: string): string {
  const sigId = `SIG-${doc.dataId}`;
  const objId = `ST-${doc.dataId}`;
  const sig = new SignedXml({
    privateKey: signer.key,
    publicCert: signer.certPem,
    signatureAlgorithm: ALG.rsaSha256,
    canonicalizationAlgorithm: ALG.c14n,
    getKeyInfoContent: () => signer.keyInfoContent,
    objects: [{
      attributes: { Id: objId },
      content: `<SignatureProperties><SignatureProperty Target="#${sigId}"><SigningTime>${signingTime}</SigningTime></SignatureProperty></SignatureProperties>`,
    }],
  });
  // Absolute paths, not `//*[@Id=…]`: a descendant scan per reference costs more than the RSA signature.
  sig.addReference({ xpath: `${doc.dataXPath}[@Id='${doc.dataId}']`, transforms: [ALG.enveloped, ALG.c14n], digestAlgorithm: ALG.sha256 });
  sig.addReference({
    xpath: `${doc.signerXPath}/*[local-name(.)='Signature']/*[local-name(.)='Object'][@Id='${objId}']`,
    transforms: [ALG.c14n], digestAlgorithm: ALG.sha256, type: ALG.signatureProperties,
  });
  sig.computeSignature(xml, { location: { reference: doc.signerXPath, action: 'append' }, attrs: { Id: sigId } });
  return sig.getSignedXml();
}
