/**
 * Receipt documents: the content model (what the decree asks a receipt to say) and the templates
 * that turn it into compact XML with xmlbuilder2. The document type is a setting of the series;
 * each type is one entry of TEMPLATES (a mapping of tags + a build function).
 */
import { create } from 'xmlbuilder2';
import { ReadingConfig, doReadNumber } from 'read-vietnamese-number';
import { canonicalTree } from './sign.js';
import { FEE_RECEIPT_TAGS, FORMAT_VERSION, RELATED_NATURE, type ReceiptTags } from './tags.js';

export type DocType = 'fee_receipt';

export interface ReceiptContent {
  kind: 'original' | 'adjustment';
  templateSymbol: string;
  seriesSymbol: string;
  /** 1 … 9,999,999; written with 7 digits. */
  number: number;
  /** Vietnam calendar date, YYYY-MM-DD. */
  issueDate: string;
  collector: { name: string; taxCode: string; address: string; budgetCode: string | null };
  payer: { name: string; idNumber?: string | null; address?: string | null };
  lines: { name: string; amount: number }[];
  total: number;
  paymentMethod: string;
  lookupCode: string;
  /** Name/value pairs shown in TTKhac: provider, provider reference, dossier, student, school year… */
  extra: { field: string; value: string }[];
  /** For an adjustment: the receipt it adjusts. */
  related?: { templateSymbol: string; seriesSymbol: string; number: number; issueDate: string; note: string };
}

export interface BuiltDocument {
  xml: string;
  /** Id of the signed data element. */
  dataId: string;
  /** The data element's canonical form (C14N 1.0), as it appears in `xml`. */
  dataCanonical: string;
  tags: ReceiptTags;
}

export interface Template {
  docType: DocType;
  tags: ReceiptTags;
  build(c: ReceiptContent): BuiltDocument;
}

const words = new ReadingConfig();
words.unit = ['đồng'];

/** The amount in Vietnamese words, capitalised: 58000 → "Năm mươi tám nghìn đồng". */
export function amountInWords(amount: number): string {
  if (!Number.isSafeInteger(amount) || amount < 0) throw new Error(`not an integer VND amount: ${amount}`);
  const w = doReadNumber(String(amount), words);
  return w.charAt(0).toUpperCase() + w.slice(1);
}

export const formatNumber = (n: number) => String(n).padStart(7, '0');

/**
 * Text as XML 1.0 can carry it: line ends normalised to \n and C0 controls other than \t and \n
 * removed (they are not allowed in XML 1.0 documents at all).
 */
export function clean(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '');
}

/** The document's Id: unit, symbols and number, so it is unique and readable. */
export function dataIdFor(c: Pick<ReceiptContent, 'collector' | 'templateSymbol' | 'seriesSymbol' | 'number'>, year: number): string {
  return `BL-${c.collector.taxCode}-${c.templateSymbol}-${c.seriesSymbol.replace(/[^A-Z0-9]/g, '')}-${year}-${formatNumber(c.number)}`;
}

type Builder = ReturnType<ReturnType<typeof create>['ele']>;

/** A child element with cleaned text; empty text adds no text node (as a parser would see it). */
function leaf(parent: Builder, tag: string, value: string): void {
  const v = clean(value);
  const el = parent.ele(tag);
  if (v !== '') el.txt(v);
}

const feeReceipt: Template = {
  docType: 'fee_receipt',
  tags: FEE_RECEIPT_TAGS,
  build(c) {
    const T = FEE_RECEIPT_TAGS;
    const dataId = dataIdFor(c, Number(c.issueDate.slice(0, 4)));
    const doc = create({ version: '1.0', encoding: 'UTF-8' });
    const root = doc.ele(T.root);
    const data = root.ele(T.data, { Id: dataId });
    const g = data.ele(T.general);
    leaf(g, T.version, FORMAT_VERSION);
    leaf(g, T.docName, c.kind === 'original' ? 'Biên lai thu phí, lệ phí' : 'Biên lai thu phí, lệ phí (điều chỉnh)');
    leaf(g, T.templateSymbol, c.templateSymbol);
    leaf(g, T.seriesSymbol, c.seriesSymbol);
    leaf(g, T.number, formatNumber(c.number));
    leaf(g, T.issueDate, c.issueDate);
    leaf(g, T.currency, 'VND');
    leaf(g, T.paymentMethod, c.paymentMethod);
    leaf(g, T.lookupCode, c.lookupCode);
    if (c.related) {
      const r = g.ele(T.related);
      leaf(r, T.relatedNature, RELATED_NATURE.adjust);
      leaf(r, T.relatedTemplateSymbol, c.related.templateSymbol);
      leaf(r, T.relatedSeriesSymbol, c.related.seriesSymbol);
      leaf(r, T.relatedNumber, formatNumber(c.related.number));
      leaf(r, T.relatedIssueDate, c.related.issueDate);
      leaf(r, T.relatedNote, c.related.note);
    }
    if (c.extra.length) {
      const o = g.ele(T.otherInfo);
      for (const e of c.extra) {
        const i = o.ele(T.otherItem);
        leaf(i, T.otherField, e.field);
        leaf(i, T.otherType, 'string');
        leaf(i, T.otherValue, e.value);
      }
    }
    const n = data.ele(T.content);
    const col = n.ele(T.collector);
    leaf(col, T.name, c.collector.name);
    leaf(col, T.taxCode, c.collector.taxCode);
    leaf(col, T.address, c.collector.address);
    if (c.collector.budgetCode) leaf(col, T.budgetCode, c.collector.budgetCode);
    const p = n.ele(T.payer);
    leaf(p, T.name, c.payer.name);
    if (c.payer.idNumber) leaf(p, T.payerIdNumber, c.payer.idNumber);
    if (c.payer.address) leaf(p, T.address, c.payer.address);
    const fees = n.ele(T.fees);
    for (const l of c.lines) {
      const f = fees.ele(T.fee);
      leaf(f, T.feeName, l.name);
      leaf(f, T.feeAmount, String(l.amount));
    }
    const tot = n.ele(T.totals);
    leaf(tot, T.totalDigits, String(c.total));
    leaf(tot, T.totalWords, amountInWords(c.total));
    // Serialised from canonical pieces (see canonicalTree): the root and the signature slot carry no
    // attributes, so their markup is the same in any serialisation.
    const dataCanonical = canonicalTree(data.node);
    const xml = `<?xml version="1.0" encoding="UTF-8"?><${T.root}>${dataCanonical}<${T.signatures}><${T.signer}></${T.signer}></${T.signatures}></${T.root}>`;
    return { xml, dataCanonical, dataId, tags: T };
  },
};

export const TEMPLATES: Record<DocType, Template> = { fee_receipt: feeReceipt };

/** Checks the content's arithmetic before anything is numbered or signed. */
export function checkContent(c: ReceiptContent): void {
  const sum = c.lines.reduce((s, l) => s + l.amount, 0);
  if (!c.lines.length || sum !== c.total) throw new Error(`receipt lines add up to ${sum}, total is ${c.total}`);
  if (!Number.isSafeInteger(c.total) || c.total <= 0) throw new Error(`receipt total ${c.total} is not a positive integer VND amount`);
}
