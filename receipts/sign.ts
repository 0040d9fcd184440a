/**
 * XML-DSig for receipts, following the Vietnamese profile (e-receipt reference §3):
 * enveloped Signature (no prefix) under DSCKS/<signer>; C14N 1.0 inclusive; RSA-SHA256;
 * Reference 1 → the data element's Id (enveloped-signature + C14N, SHA-256); Reference 2 → an
 * <Object Id> holding SignatureProperties/SignatureProperty/SigningTime (Vietnam local time, no
 * zone); KeyInfo/X509Data with X509SubjectName and the certificates.
 *
 * How: canonicalisation is xml-crypto's C14nCanonicalization, digests and the signature are
 * node:crypto. We assemble the Signature element ourselves instead of calling
 * SignedXml.computeSignature: on a receipt-sized document computeSignature spent ~90% of its time
 * in XPath, deep DOM clones and re-serialisation (423 signatures/s against 3,416 raw RSA/s); this
 * path canonicalises each signed node once (measured in README → Benchmarks). Verification stays
 * with xml-crypto's SignedXml (verify.ts), and the tests check every receipt with xmlsec1 too, so
 * the signer is held to two independent implementations.
 */
import crypto from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import { create } from 'xmlbuilder2';
import { C14nCanonicalization, findAncestorNs } from 'xml-crypto';
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

const c14n = new C14nCanonicalization();

/**
 * C14N 1.0 of a tree a template built, with no namespaces in scope (our business elements declare
 * none). Templates serialise documents from these canonical pieces rather than with xmlbuilder2's
 * writer: that writer leaves `&` unescaped when it already looks like an entity (`&amp;` in a
 * payer's name would come back as `&`), so its bytes would not parse back to the tree that was
 * signed. C14N escapes everything and is what verifiers compute, so the stored bytes are exactly
 * what the digest covers, and the data element is canonicalised once, not twice.
 */
export function canonicalTree(node: unknown): string {
  return c14n.process(node as AnyNode, { ancestorNamespaces: [] }) as string;
}
const parser = new DOMParser();
const sha256 = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest('base64');

type AnyDoc = Parameters<typeof findAncestorNs>[0];
type AnyNode = Parameters<C14nCanonicalization['process']>[0];

/**
 * C14N of a tree built in the Signature's namespace. The first time per shape, the same markup is
 * also parsed and canonicalised the ordinary way, and both must agree (else signing stops).
 */
const checkedShapes = new Set<string>();
function canonicalBuilt(node: unknown, shape: string, markup: string): string {
  const out = c14n.process(node as AnyNode, { ancestorNamespaces: [] }) as string;
  if (!checkedShapes.has(shape)) {
    const parsed = parser.parseFromString(`<Signature xmlns="${ALG.dsig}">${markup}</Signature>`, 'text/xml') as unknown as AnyDoc;
    const path = `/Signature/${shape === 'object' ? 'Object' : 'SignedInfo'}`;
    const viaParse = c14n.process(selectFirst(parsed, path) as AnyNode, { ancestorNamespaces: findAncestorNs(parsed, path) }) as string;
    if (viaParse !== out) throw new Error(`signing: the built ${shape} does not canonicalise like its markup`);
    checkedShapes.add(shape);
  }
  return out;
}

interface El {
  setAttribute(name: string, value: string): void;
  textContent: string | null;
}

/**
 * The Object and SignedInfo trees, built once in the Signature's namespace (xmlbuilder2); each
 * signature sets its own Ids, time and digests on them, then canonicalises them. (Signing is
 * synchronous, so one set of trees per thread is safe.)
 */
let built: { object: El; property: El; time: El; signedInfo: El; ref1: El; ref2: El; digest1: El; digest2: El } | undefined;
function trees() {
  if (built) return built;
  const object = create().ele(ALG.dsig, 'Signature').ele('Object', { Id: '-' });
  const property = object.ele('SignatureProperties').ele('SignatureProperty', { Target: '-' });
  const time = property.ele('SigningTime').txt('-');
  const info = create().ele(ALG.dsig, 'Signature').ele('SignedInfo');
  info.ele('CanonicalizationMethod', { Algorithm: ALG.c14n });
  info.ele('SignatureMethod', { Algorithm: ALG.rsaSha256 });
  const ref = (type: string | undefined, transforms: string[]) => {
    const r = info.ele('Reference', type ? { URI: '-', Type: type } : { URI: '-' });
    const tr = r.ele('Transforms');
    for (const x of transforms) tr.ele('Transform', { Algorithm: x });
    r.ele('DigestMethod', { Algorithm: ALG.sha256 });
    return { r, digest: r.ele('DigestValue').txt('-') };
  };
  const r1 = ref(undefined, [ALG.enveloped, ALG.c14n]);
  const r2 = ref(ALG.signatureProperties, [ALG.c14n]);
  const el = (b: { node: unknown }) => b.node as El;
  // txt() returns the element, whose text node is its only child: textContent replaces it.
  built = {
    object: el(object),
    property: el(property),
    time: el(time),
    signedInfo: el(info),
    ref1: el(r1.r),
    ref2: el(r2.r),
    digest1: el(r1.digest),
    digest2: el(r2.digest),
  };
  return built;
}

/** Walks a simple absolute path of element names (`/A/B/C`). */
function selectFirst(doc: AnyDoc, path: string): unknown {
  let cur = doc as unknown as { childNodes: ArrayLike<{ nodeType: number; localName: string; childNodes: unknown }> };
  for (const name of path.split('/').filter(Boolean)) {
    const next = Array.from(cur.childNodes).find((n) => n.nodeType === 1 && n.localName === name);
    if (!next) throw new Error(`signing: ${path} not found`);
    cur = next as unknown as typeof cur;
  }
  return cur;
}

function signedInfoXml(dataId: string, objId: string, d1: string, d2: string): string {
  return (
    `<SignedInfo><CanonicalizationMethod Algorithm="${ALG.c14n}"/><SignatureMethod Algorithm="${ALG.rsaSha256}"/>` +
    `<Reference URI="#${dataId}"><Transforms><Transform Algorithm="${ALG.enveloped}"/><Transform Algorithm="${ALG.c14n}"/></Transforms>` +
    `<DigestMethod Algorithm="${ALG.sha256}"/><DigestValue>${d1}</DigestValue></Reference>` +
    `<Reference URI="#${objId}" Type="${ALG.signatureProperties}"><Transforms><Transform Algorithm="${ALG.c14n}"/></Transforms>` +
    `<DigestMethod Algorithm="${ALG.sha256}"/><DigestValue>${d2}</DigestValue></Reference></SignedInfo>`
  );
}

/**
 * Signs a document built by a template: `xml` holds the canonical data element and an empty signer slot `<DSCKS><signer></signer></DSCKS>`
 * (no namespace declarations anywhere: the business elements carry none). Returns the signed
 * document: the unsigned bytes unchanged, the Signature placed in the slot.
 */
export function signDocument(
  xml: string,
  doc: { dataId: string; dataCanonical: string; tags: { signatures: string; signer: string } },
  signer: Signer,
  signingTime: string,
): string {
  const slot = `<${doc.tags.signatures}><${doc.tags.signer}></${doc.tags.signer}></${doc.tags.signatures}>`;
  const at = xml.lastIndexOf(slot);
  if (at < 0 || xml.indexOf(slot) !== at) throw new Error('signing: the document has no single empty signer slot');
  if (/\sxmlns[:=]/.test(xml)) throw new Error('signing: business elements must not declare namespaces');
  const sigId = `SIG-${doc.dataId}`;
  const objId = `ST-${doc.dataId}`;

  // Reference 1: the data element. The Signature is its sibling's descendant, never inside it, so
  // the enveloped-signature transform leaves it as it is; C14N does the rest.
  // It is in the document as its canonical form (the template wrote it so), which is also what
  // C14N of the parsed bytes gives; the digest covers exactly those bytes.
  if (!xml.includes(doc.dataCanonical)) throw new Error('signing: the document does not hold its canonical data element');
  const d1 = sha256(doc.dataCanonical);

  // Reference 2 and SignedInfo: canonicalised as built (xmlbuilder2 tree, in the Signature's
  // namespace), and written out below as the same markup.
  const object = `<Object Id="${objId}"><SignatureProperties><SignatureProperty Target="#${sigId}"><SigningTime>${signingTime}</SigningTime></SignatureProperty></SignatureProperties></Object>`;
  const t = trees();
  t.object.setAttribute('Id', objId);
  t.property.setAttribute('Target', `#${sigId}`);
  t.time.textContent = signingTime;
  const d2 = sha256(canonicalBuilt(t.object, 'object', object));
  const info = signedInfoXml(doc.dataId, objId, d1, d2);
  t.ref1.setAttribute('URI', `#${doc.dataId}`);
  t.ref2.setAttribute('URI', `#${objId}`);
  t.digest1.textContent = d1;
  t.digest2.textContent = d2;
  const infoCanon = canonicalBuilt(t.signedInfo, 'signedinfo', info);
  const value = crypto.sign('sha256', Buffer.from(infoCanon, 'utf8'), signer.key).toString('base64');
  const signature = `<Signature xmlns="${ALG.dsig}" Id="${sigId}">${info}<SignatureValue>${value}</SignatureValue><KeyInfo>${signer.keyInfoContent}</KeyInfo>${object}</Signature>`;
  return (
    xml.slice(0, at) + `<${doc.tags.signatures}><${doc.tags.signer}>${signature}</${doc.tags.signer}></${doc.tags.signatures}>` + xml.slice(at + slot.length)
  );
}
