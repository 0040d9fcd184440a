/**
 * Structural limits for XML from strangers, checked by a streaming pre-scan (saxes) before any DOM
 * is built: a receipt has about sixty elements, eight levels deep, so anything far beyond that is
 * refused after reading only as much as it takes to exceed a limit. Building a DOM of 120,000
 * elements and walking it cost ~300 ms of CPU per request; the scan stops at element 5,001.
 *
 * The scan also refuses what must never reach the DOM parser: a DOCTYPE (no XXE, no entity
 * expansion), undefined entities and malformed XML.
 */
import { SaxesParser } from 'saxes';
import { FeegateError } from '../gateway/errors.js';

export const XML_LIMITS = {
  /** Bytes of UTF-8 (the body limit of the verify route too). */
  bytes: 512 * 1024,
  /** Elements in the whole document (ours: ~60 plus 3 per fee line and 4 per extra field). */
  elements: 5_000,
  /** Nesting depth (ours: 8, BLai/DSCKS/TCThu/Signature/Object/SignatureProperties/SignatureProperty/SigningTime). */
  depth: 32,
  /** Attributes on one element (ours: at most 2). */
  attributesPerElement: 16,
} as const;

export type XmlLimit = keyof typeof XML_LIMITS;

function tooComplex(limit: XmlLimit, what: string): FeegateError {
  return new FeegateError('FEEGATE_ERR_XML_TOO_COMPLEX', `${what}: at most ${XML_LIMITS[limit]} allowed`, { limit, max: XML_LIMITS[limit] });
}

/** Throws a FeegateError unless `xml` is well-formed and within every limit. */
export function scanXml(xml: string): void {
  if (Buffer.byteLength(xml, 'utf8') > XML_LIMITS.bytes) {
    throw new FeegateError('FEEGATE_ERR_BODY_TOO_LARGE', `XML receipts are at most ${XML_LIMITS.bytes} bytes`);
  }
  // Cheap and explicit, before any parser runs (the scan below refuses them too).
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) {
    throw new FeegateError('FEEGATE_ERR_XML_DTD_FORBIDDEN', 'XML with a DOCTYPE or ENTITY declaration is refused (XXE and entity expansion)');
  }
  const parser = new SaxesParser({ position: false });
  let elements = 0;
  let depth = 0;
  // Handlers throw out of write(): saxes calls them synchronously, so the scan stops right there.
  parser.on('doctype', () => {
    throw new FeegateError('FEEGATE_ERR_XML_DTD_FORBIDDEN', 'XML with a DOCTYPE or ENTITY declaration is refused (XXE and entity expansion)');
  });
  parser.on('opentag', (tag) => {
    if (++elements > XML_LIMITS.elements) throw tooComplex('elements', 'Too many elements');
    if (++depth > XML_LIMITS.depth) throw tooComplex('depth', 'Elements nested too deep');
    if (Object.keys(tag.attributes).length > XML_LIMITS.attributesPerElement) throw tooComplex('attributesPerElement', `Too many attributes on <${tag.name}>`);
    if (tag.isSelfClosing) depth--;
  });
  parser.on('closetag', (tag) => {
    if (!tag.isSelfClosing) depth--;
  });
  parser.on('error', (err) => {
    throw new FeegateError('FEEGATE_ERR_XML_MALFORMED', `The XML could not be parsed: ${err.message.split('\n')[0]}`);
  });
  parser.write(xml).close();
  if (elements === 0) throw new FeegateError('FEEGATE_ERR_XML_MALFORMED', 'The XML could not be parsed: no root element');
}
