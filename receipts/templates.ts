/**
 * Receipt documents: the content model (what the decree asks a receipt to say) and the templates
 * that turn it into compact XML with xmlbuilder2. The document type is a setting of the series;
 * each type is one entry of TEMPLATES (a mapping of tags + a build function).
 */
import { create } from 'xmlbuilder2';
import { ReadingConfig, doReadNumber } from 'read-vietnamese-number';
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
  /** Absolute XPath of the signed data element. */
  dataXPath: string;
  /** XPath of the element the Signature is appended to. */
  signerXPath: string;
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

/** The document's Id: unit, symbols and number, so it is unique and readable. */
export function dataIdFor(c: Pick<ReceiptContent, 'collector' | 'templateSymbol' | 'seriesSymbol' | 'number'>, year: number): string {
  return `BL-${c.collector.taxCode}-${c.templateSymbol}-${c.seriesSymbol.replace(/[^A-Z0-9]/g, '')}-${year}-${formatNumber(c.number)}`;
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
    g.ele(T.version).txt(FORMAT_VERSION);
    g.ele(T.docName).txt(c.kind === 'original' ? 'Biên lai thu phí, lệ phí' : 'Biên lai thu phí, lệ phí (điều chỉnh)');
    g.ele(T.templateSymbol).txt(c.templateSymbol);
    g.ele(T.seriesSymbol).txt(c.seriesSymbol);
    g.ele(T.number).txt(formatNumber(c.number));
    g.ele(T.issueDate).txt(c.issueDate);
    g.ele(T.currency).txt('VND');
    g.ele(T.paymentMethod).txt(c.paymentMethod);
    g.ele(T.lookupCode).txt(c.lookupCode);
    if (c.related) {
      const r = g.ele(T.related);
      r.ele(T.relatedNature).txt(RELATED_NATURE.adjust);
      r.ele(T.relatedTemplateSymbol).txt(c.related.templateSymbol);
      r.ele(T.relatedSeriesSymbol).txt(c.related.seriesSymbol);
      r.ele(T.relatedNumber).txt(formatNumber(c.related.number));
      r.ele(T.relatedIssueDate).txt(c.related.issueDate);
      r.ele(T.relatedNote).txt(c.related.note);
    }
    if (c.extra.length) {
      const o = g.ele(T.otherInfo);
      for (const e of c.extra) {
        const i = o.ele(T.otherItem);
        i.ele(T.otherField).txt(e.field);
        i.ele(T.otherType).txt('string');
        i.ele(T.otherValue).txt(e.value);
      }
    }
    const n = data.ele(T.content);
    const col = n.ele(T.collector);
    col.ele(T.name).txt(c.collector.name);
    col.ele(T.taxCode).txt(c.collector.taxCode);
    col.ele(T.address).txt(c.collector.address);
    if (c.collector.budgetCode) col.ele(T.budgetCode).txt(c.collector.budgetCode);
    const p = n.ele(T.payer);
    p.ele(T.name).txt(c.payer.name);
    if (c.payer.idNumber) p.ele(T.payerIdNumber).txt(c.payer.idNumber);
    if (c.payer.address) p.ele(T.address).txt(c.payer.address);
    const fees = n.ele(T.fees);
    for (const l of c.lines) {
      const f = fees.ele(T.fee);
      f.ele(T.feeName).txt(l.name);
      f.ele(T.feeAmount).txt(String(l.amount));
    }
    const tot = n.ele(T.totals);
    tot.ele(T.totalDigits).txt(String(c.total));
    tot.ele(T.totalWords).txt(amountInWords(c.total));
    root.ele(T.signatures).ele(T.signer);
    return { xml: doc.end({ prettyPrint: false }), dataId, dataXPath: `/${T.root}/${T.data}`, signerXPath: `/${T.root}/${T.signatures}/${T.signer}`, tags: T };
  },
};

export const TEMPLATES: Record<DocType, Template> = { fee_receipt: feeReceipt };

/** Checks the content's arithmetic before anything is numbered or signed. */
export function checkContent(c: ReceiptContent): void {
  const sum = c.lines.reduce((s, l) => s + l.amount, 0);
  if (!c.lines.length || sum !== c.total) throw new Error(`receipt lines add up to ${sum}, total is ${c.total}`);
  if (!Number.isSafeInteger(c.total) || c.total <= 0) throw new Error(`receipt total ${c.total} is not a positive integer VND amount`);
}
