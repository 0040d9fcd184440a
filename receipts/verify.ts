/**
 * The receipt verifier: anyone's XML receipt in, a report out. It answers: is the signature
 * valid, who signed (subject, tax code), does the certificate chain up to a trust anchor and was
 * it valid at the signing time, when was it signed, and which part was tampered (the data, the
 * signing time, or the SignedInfo / signature value).
 *
 * Input is hostile: DTDs and entity declarations are refused before parsing (no XXE, no entity
 * expansion), size, element count, depth and attributes are limited by a streaming pre-scan before
 * any DOM is built (xml-limits.ts), every Id must be unique (signature wrapping), the signature
 * policy is enforced (exactly two references: the data element and the SigningTime object; no
 * empty or external URIs), nothing may stand beside what is signed (VN-BL-008, named in
 * `unsigned`), only RSA keys and RSA signature methods are run (others: "unsupported algorithm"),
 * and document fields are read from the bytes the signature covers (`signed` lists them).
 * Rules carry stable ids (VN-BL-*, DSIG-*). Synchronous: the HTTP routes run it in a worker pool
 * (verifier-pool.ts); in-process callers (CLI, tests) call it directly.
 */
import crypto from 'node:crypto';
import { DOMParser, XMLSerializer, type Node as XNode } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { FeegateError } from '../gateway/errors.js';
import { chainToAnchor } from '../certs/checks.js';
import { certInfo, toPemCert } from '../certs/x509.js';
import { ALG } from './sign.js';
import { TEMPLATES, amountInWords, type DocType } from './templates.js';
import type { ReceiptTags } from './tags.js';
import { XML_LIMITS, scanXml } from './xml-limits.js';

export const MAX_XML_BYTES = XML_LIMITS.bytes;

export type Part = 'data' | 'signing_time' | 'signed_info' | 'other';

export interface Problem {
  rule: string;
  part: Part | 'certificate' | 'document';
  message: string;
}

export interface VerificationReport {
  valid: boolean;
  signature_valid: boolean;
  trusted: boolean;
  doc_type: DocType | null;
  references: { uri: string; part: Part; valid: boolean | null }[];
  tampered: Part[];
  signing_time: string | null;
  signature_algorithm: string | null;
  signer: {
    subject: string;
    issuer: string;
    tax_code: string | null;
    serial: string;
    not_before: string;
    not_after: string;
    fingerprint_sha256: string;
  } | null;
  chain: string[];
  document: Record<string, string> | null;
  /** Paths of the elements the signature covers (when it holds): exactly what is signed. */
  signed: string[];
  /** Paths of content outside the signed element and the Signature: each one makes the document invalid. */
  unsigned: string[];
  problems: Problem[];
}

/**
 * Refuses what must never reach a DOM parser: oversized input, DTDs and entity declarations, and
 * more elements, depth or attributes than a receipt has (a streaming pre-scan, see xml-limits.ts).
 */
export function assertSafeXml(xml: string): void {
  scanXml(xml);
}

export function parseXml(xml: string): Document {
  assertSafeXml(xml);
  try {
    const doc = new DOMParser({
      onError: (level, msg) => {
        if (level !== 'warning') throw new Error(msg);
      },
    }).parseFromString(xml, 'text/xml');
    if (!doc.documentElement) throw new Error('no root element');
    return doc as unknown as Document;
  } catch (err) {
    if (err instanceof FeegateError) throw err;
    throw new FeegateError('FEEGATE_ERR_XML_MALFORMED', `The XML could not be parsed: ${(err as Error).message.split('\n')[0]}`);
  }
}

function children(el: Element, name?: string): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (!name || (n as Element).localName === name)) out.push(n as Element);
  }
  return out;
}

function child(el: Element | undefined, name: string): Element | undefined {
  return el ? children(el, name)[0] : undefined;
}

const text = (el: Element | undefined) => el?.textContent ?? '';

function allElements(root: Element): Element[] {
  const out: Element[] = [root];
  for (let i = 0; i < out.length; i++) out.push(...children(out[i]!));
  return out;
}

/** Reads the receipt's main fields from a data element (signed bytes when the signature holds). */
function readDocument(data: Element, T: ReceiptTags): Record<string, string> {
  const g = child(data, T.general);
  const n = child(data, T.content);
  const fees = children(child(n, T.fees) ?? data, T.fee).map((f) => ({ name: text(child(f, T.feeName)), amount: text(child(f, T.feeAmount)) }));
  return {
    template_symbol: text(child(g, T.templateSymbol)),
    series_symbol: text(child(g, T.seriesSymbol)),
    number: text(child(g, T.number)),
    issue_date: text(child(g, T.issueDate)),
    lookup_code: text(child(g, T.lookupCode)),
    collector_name: text(child(child(n, T.collector), T.name)),
    collector_tax_code: text(child(child(n, T.collector), T.taxCode)),
    payer_name: text(child(child(n, T.payer), T.name)),
    total: text(child(child(n, T.totals), T.totalDigits)),
    total_words: text(child(child(n, T.totals), T.totalWords)),
    lines: JSON.stringify(fees),
  };
}

/** An XPath-like name for an element: /BLai/DSCKS/TCThu, /BLai/DLBLai[2] for the second of its name. */
function pathOf(el: Element): string {
  const parts: string[] = [];
  for (let e: Element | null = el; e && e.nodeType === 1; e = e.parentNode as Element | null) {
    const parent = e.parentNode as Element | null;
    const same = parent && parent.nodeType === 1 ? children(parent, e.localName ?? '') : [e];
    parts.unshift(same.length > 1 ? `${e.localName}[${same.indexOf(e) + 1}]` : String(e.localName));
  }
  return '/' + parts.join('/');
}

const TEXT = 3;
const CDATA = 4;
const PI = 7;
const COMMENT = 8;

/**
 * Everything outside what the signature covers, as paths. The expected shape is exactly
 * root = [data element, signatures], signatures = [signer slot], signer slot = [Signature],
 * Signature = [SignedInfo, SignatureValue, KeyInfo, the referenced Object]; namespace
 * declarations and whitespace between elements are not content. KeyInfo is unsigned by design
 * (only its certificate is used, and it is checked by the signature and the chain).
 */
function unsignedContent(doc: Document, root: Element, data: Element, sig: Element, timeObject: Element | undefined, T: ReceiptTags): string[] {
  const out: string[] = [];
  const slots = sig.parentNode as Element | null;
  const signatures = slots?.parentNode as Element | null;
  const placed = slots?.localName === T.signer && signatures?.localName === T.signatures && signatures.parentNode === root;
  const allowedChild = new Map<Element, (c: Element) => boolean>([[root, (c) => c === data || (placed && c === signatures)]]);
  if (placed) {
    allowedChild.set(signatures!, (c) => c === slots);
    allowedChild.set(slots!, (c) => c === sig);
  }
  const sigParts = new Set(['SignedInfo', 'SignatureValue', 'KeyInfo']);
  allowedChild.set(sig, (c) => (sigParts.has(c.localName ?? '') && children(sig, c.localName ?? '')[0] === c) || c === timeObject);
  const nodeWord = (n: Node) => (n.nodeType === COMMENT ? 'comment()' : n.nodeType === PI ? 'processing-instruction()' : 'text()');
  const look = (el: Element | Document, path: string, allowed: (c: Element) => boolean, allowedAttrs: Set<string>) => {
    if (el.nodeType === 1) {
      const attrs = (el as Element).attributes;
      for (let i = 0; i < attrs.length; i++) {
        const a = attrs.item(i)!;
        if (a.name === 'xmlns' || a.name.startsWith('xmlns:') || allowedAttrs.has(a.name)) continue;
        out.push(`${path}/@${a.name}`);
      }
    }
    for (let n = el.firstChild; n; n = n.nextSibling) {
      if (n.nodeType === 1) {
        if (!allowed(n as Element)) out.push(pathOf(n as Element));
      } else if ((n.nodeType === TEXT || n.nodeType === CDATA) && !/\S/.test(n.nodeValue ?? '')) {
        continue;
      } else if (n.nodeType === PI && n.nodeName === 'xml') {
        continue; // the XML declaration (xmldom keeps it as a node)
      } else if (n.nodeType === TEXT || n.nodeType === CDATA || n.nodeType === COMMENT || n.nodeType === PI) {
        out.push(`${path}/${nodeWord(n)}`);
      }
    }
  };
  look(doc, '', (c) => c === root, new Set());
  for (const [el, allowed] of allowedChild) look(el, pathOf(el), allowed, new Set(el === sig ? ['Id'] : []));
  return out;
}

function signerOf(c: crypto.X509Certificate): NonNullable<VerificationReport['signer']> {
  const subject = c.subject.split('\n').reverse().join(', ');
  return {
    subject,
    issuer: c.issuer.split('\n').reverse().join(', '),
    tax_code: /MST[:=]\s*([0-9]{10}(?:-[0-9]{3})?)/.exec(c.subject)?.[1] ?? null,
    serial: c.serialNumber.toLowerCase(),
    not_before: new Date(c.validFrom).toISOString(),
    not_after: new Date(c.validTo).toISOString(),
    fingerprint_sha256: c.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

/** Vietnam local "YYYY-MM-DDThh:mm:ss" → the instant. */
function fromVnLocal(s: string): Date | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(s)) return null;
  const d = new Date(`${s}+07:00`);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function verifyReceiptXml(xml: string, anchors: string[]): VerificationReport {
  const doc = parseXml(xml);
  const root = doc.documentElement as unknown as Element;
  const report: VerificationReport = {
    valid: false,
    signature_valid: false,
    trusted: false,
    doc_type: null,
    references: [],
    tampered: [],
    signing_time: null,
    signature_algorithm: null,
    signer: null,
    chain: [],
    document: null,
    signed: [],
    unsigned: [],
    problems: [],
  };
  const problem = (rule: string, part: Problem['part'], message: string) => report.problems.push({ rule, part, message });

  const template = Object.values(TEMPLATES).find((t) => t.tags.root === root.localName);
  if (!template) {
    problem('VN-BL-000', 'document', `Unknown document type <${root.localName}>`);
    return report;
  }
  const T = template.tags;
  report.doc_type = template.docType;
  const dataCandidates = children(root, T.data);
  if (!dataCandidates.length) {
    problem('VN-BL-000', 'document', `No <${T.data}> element`);
    return report;
  }

  // VN-BL-007: one element per Id value (signature wrapping defence).
  const seen = new Set<string>();
  for (const el of allElements(root)) {
    const id = el.getAttribute('Id');
    if (id === null || id === '') continue;
    if (seen.has(id)) problem('VN-BL-007', 'document', `Id "${id}" appears more than once`);
    seen.add(id);
  }

  const sigs = Array.from(root.getElementsByTagNameNS(ALG.dsig, 'Signature') as unknown as Element[]);
  if (sigs.length !== 1) {
    problem('DSIG-001', 'signed_info', sigs.length ? `Expected one Signature, found ${sigs.length}` : 'The document is not signed');
    if (!sigs.length) return report;
  }
  const sig = sigs[0]!;
  const signedInfo = child(sig, 'SignedInfo');
  // The data element is the one the signature references (another one beside it is unsigned content).
  const refIds = new Set(children(signedInfo ?? sig, 'Reference').map((r) => (r.getAttribute('URI') ?? '').replace(/^#/, '')));
  const data = dataCandidates.find((c) => refIds.has(c.getAttribute('Id') ?? '')) ?? dataCandidates[0]!;
  report.signature_algorithm = child(signedInfo, 'SignatureMethod')?.getAttribute('Algorithm') ?? null;
  const supportedMethod = report.signature_algorithm === ALG.rsaSha256 || report.signature_algorithm === ALG.rsaSha1;
  if (report.signature_algorithm === ALG.rsaSha1) problem('DSIG-002', 'signed_info', 'RSA-SHA1 signature: accepted for legacy documents only');
  else if (!supportedMethod)
    problem('DSIG-002', 'signed_info', `Unsupported algorithm: signature method ${report.signature_algorithm} is not allowed (RSA-SHA256 only)`);

  // Signing time: the Object inside this Signature.
  const objects = children(sig, 'Object');
  const timeObject = objects.find((o) => o.getElementsByTagNameNS(ALG.dsig, 'SigningTime').length || o.getElementsByTagName('SigningTime').length);
  const timeEl = timeObject ? (timeObject.getElementsByTagNameNS(ALG.dsig, 'SigningTime')[0] ?? timeObject.getElementsByTagName('SigningTime')[0]) : undefined;
  report.signing_time = timeEl ? text(timeEl as unknown as Element) : null;

  // Policy: exactly two references, to the data element and to the SigningTime object.
  const refs = children(signedInfo ?? sig, 'Reference');
  for (const r of refs) {
    const uri = r.getAttribute('URI') ?? '';
    const id = uri.startsWith('#') ? uri.slice(1) : null;
    const part: Part = id && id === data.getAttribute('Id') ? 'data' : id && timeObject && id === timeObject.getAttribute('Id') ? 'signing_time' : 'other';
    report.references.push({ uri, part, valid: null });
    if (part === 'other') problem('DSIG-003', 'other', `Reference URI "${uri}" points to neither the data element nor the SigningTime object`);
  }
  if (refs.length !== 2 || !report.references.some((r) => r.part === 'data') || !report.references.some((r) => r.part === 'signing_time')) {
    problem('DSIG-003', 'signed_info', 'The signature must have exactly two references: the data element and the SigningTime object');
  }

  // VN-BL-008: nothing may stand beside what is signed (a second data element, an element in
  // DSCKS or under the root, text, comments): a reader would take it for part of the receipt.
  report.unsigned = unsignedContent(doc, root, data, sig, timeObject, T);
  for (const path of report.unsigned) problem('VN-BL-008', 'document', `Unsigned content outside the signature: ${path}`);

  // Signer certificate from KeyInfo (leaf first, then any intermediates).
  const certEls = Array.from(sig.getElementsByTagNameNS(ALG.dsig, 'X509Certificate') as unknown as Element[]);
  const pems = certEls.map((c) => toPemCert(text(c)));
  let leafPem: string | undefined;
  try {
    leafPem = pems[0];
    if (leafPem) new crypto.X509Certificate(leafPem);
  } catch {
    leafPem = undefined;
  }
  if (!leafPem) {
    problem('DSIG-004', 'certificate', 'No readable X509Certificate in KeyInfo');
    return report;
  }
  // DSIG-012: receipts are signed with RSA keys; an EC or Ed25519 certificate is named as such,
  // not run through RSA code that would fail with a misleading message (or not at all).
  const leaf = new crypto.X509Certificate(leafPem);
  const keyType = leaf.publicKey.asymmetricKeyType ?? 'unknown';
  if (keyType !== 'rsa') {
    report.signer = signerOf(leaf);
    const curve = leaf.publicKey.asymmetricKeyDetails?.namedCurve;
    const label =
      keyType === 'ec' ? `EC${curve ? ` (${curve})` : ''}` : keyType === 'ed25519' ? 'Ed25519' : keyType === 'ed448' ? 'Ed448' : keyType.toUpperCase();
    problem(
      'DSIG-012',
      'certificate',
      `Unsupported algorithm: the signer's certificate has an ${label} key; receipts are verified for RSA keys (RSA-SHA256) only`,
    );
    return report;
  }
  const info = certInfo(leafPem);
  report.signer = {
    subject: info.subject,
    issuer: info.issuer,
    tax_code: info.taxCode,
    serial: info.serial,
    not_before: info.notBefore.toISOString(),
    not_after: info.notAfter.toISOString(),
    fingerprint_sha256: info.fingerprint,
  };
  // An algorithm we do not allow is never run (HMAC with the public certificate as its key, ...).
  if (!supportedMethod) return report;

  // Cryptographic check with the embedded certificate (trust is decided separately, below).
  const verifier = new SignedXml({ publicCert: leafPem, getCertFromKeyInfo: () => null });
  let ok = false;
  try {
    verifier.loadSignature(new XMLSerializer().serializeToString(sig as unknown as XNode));
    ok = verifier.checkSignature(xml);
  } catch (err) {
    const msg = (err as Error).message;
    // xml-crypto throws (rather than returning false) when the SignatureValue does not verify.
    if (!/signature value .* is incorrect/is.test(msg)) problem('DSIG-005', 'signed_info', `The signature could not be checked: ${msg.slice(0, 200)}`);
  }
  const checked = verifier.getReferences();
  const firstBad = checked.findIndex((r) => r.validationError);
  report.references.forEach((r, i) => {
    r.valid = ok ? true : firstBad === -1 ? true : i < firstBad ? true : i === firstBad ? false : null;
  });
  if (!ok && report.problems.every((p) => p.rule !== 'DSIG-005')) {
    if (firstBad >= 0) {
      const part = report.references[firstBad]?.part ?? 'other';
      report.tampered.push(part);
      problem(
        'DSIG-006',
        part,
        `The digest of reference ${report.references[firstBad]?.uri} does not match: the ${part === 'data' ? 'receipt data' : part === 'signing_time' ? 'signing time' : 'referenced element'} was changed after signing`,
      );
    } else {
      report.tampered.push('signed_info');
      report.references.forEach((r) => (r.valid = true));
      problem('DSIG-007', 'signed_info', 'The signature value does not match SignedInfo (the signature or SignedInfo was changed, or another key signed it)');
    }
  }
  report.signature_valid = ok;
  if (ok) report.signed = [pathOf(data), ...(timeObject ? [pathOf(timeObject)] : [])];

  // Trust: the chain up to an anchor, and the certificate valid at the signing time.
  const at = report.signing_time ? fromVnLocal(report.signing_time) : null;
  if (!at) problem('DSIG-008', 'signing_time', `SigningTime "${report.signing_time ?? ''}" is missing or not YYYY-MM-DDThh:mm:ss`);
  const when = at ?? new Date();
  try {
    report.chain = chainToAnchor(leafPem, pems.slice(1), anchors, when).map((s) => s.replace(/\n/g, ', '));
    report.trusted = true;
  } catch (err) {
    problem('DSIG-009', 'certificate', (err as Error).message);
  }
  if (when < info.notBefore || when > info.notAfter) {
    report.trusted = false;
    problem('DSIG-010', 'certificate', `The certificate was not valid at the signing time (${info.notBefore.toISOString()} – ${info.notAfter.toISOString()})`);
  }
  if (info.keyUsage && !info.keyUsage.digitalSignature && !info.keyUsage.nonRepudiation) {
    problem('DSIG-011', 'certificate', "The certificate's key usage does not allow signing");
  }

  // Business rules, on the bytes the signature covers when it holds.
  let signedData = data;
  if (ok) {
    const signedXml = verifier
      .getSignedReferences()
      .map((s) => new DOMParser().parseFromString(s, 'text/xml').documentElement as unknown as Element)
      .find((e) => e?.localName === T.data);
    if (signedXml) signedData = signedXml;
  }
  const d = readDocument(signedData, T);
  report.document = d;
  const lines = JSON.parse(d.lines!) as { amount: string }[];
  const sum = lines.reduce((s, l) => s + (/^\d+$/.test(l.amount) ? Number(l.amount) : NaN), 0);
  if (!/^\d+$/.test(d.total!) || sum !== Number(d.total)) problem('VN-BL-001', 'data', `The fee lines add up to ${sum}, the total says ${d.total}`);
  else if (d.total_words !== amountInWords(Number(d.total))) problem('VN-BL-002', 'data', `The total in words "${d.total_words}" does not read ${d.total}`);
  if (!/^0[12]BLP\d-\d{3}$/.test(d.template_symbol!) || !/^[A-Z]{2}-\d{2}E$/.test(d.series_symbol!)) {
    problem('VN-BL-003', 'data', `Symbols "${d.template_symbol}" / "${d.series_symbol}" do not have the receipt format`);
  }
  if (info.taxCode !== d.collector_tax_code) {
    problem('VN-BL-006', 'certificate', `The certificate names tax code ${info.taxCode ?? '(none)'}, the receipt's collector is ${d.collector_tax_code}`);
  }
  report.valid = report.signature_valid && report.trusted && report.problems.length === 0;
  return report;
}
