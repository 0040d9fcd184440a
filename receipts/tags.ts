/**
 * EVERY XML tag name of the receipt, in one place.
 *
 * The official receipt schema of the tax authority is not public (see the e-receipt reference,
 * §2.3). These names follow the reference's skeleton, built with the tax authority's naming rule
 * (initials of each word, last word whole: "Dữ liệu biên lai" → DLBLai) and the HDon/CTu patterns.
 * When the official XSD arrives, change the names HERE; the builder, the signer and the verifier
 * read them from this module only.
 *
 * A second document type (the e-invoice `HDon` some schools need for tuition) is a second mapping
 * plus a template in templates.ts, not a rewrite.
 */

export interface ReceiptTags {
  root: string;
  /** The signed element (it carries the Id attribute the first Reference points to). */
  data: string;
  general: string;
  version: string;
  docName: string;
  templateSymbol: string;
  seriesSymbol: string;
  number: string;
  issueDate: string;
  currency: string;
  paymentMethod: string;
  lookupCode: string;
  related: string;
  relatedNature: string;
  relatedTemplateSymbol: string;
  relatedSeriesSymbol: string;
  relatedNumber: string;
  relatedIssueDate: string;
  relatedNote: string;
  otherInfo: string;
  otherItem: string;
  otherField: string;
  otherType: string;
  otherValue: string;
  content: string;
  collector: string;
  name: string;
  taxCode: string;
  address: string;
  budgetCode: string;
  payer: string;
  payerIdNumber: string;
  fees: string;
  fee: string;
  feeName: string;
  feeAmount: string;
  totals: string;
  totalDigits: string;
  totalWords: string;
  signatures: string;
  /** The signer's slot under `signatures`, where the enveloped Signature is appended. */
  signer: string;
}

/** Biên lai thu phí, lệ phí (fee/charge receipt): the reference's skeleton. */
export const FEE_RECEIPT_TAGS: ReceiptTags = {
  root: 'BLai',
  data: 'DLBLai',
  general: 'TTChung',
  version: 'PBan',
  docName: 'TBLai',
  templateSymbol: 'KHMSBLai',
  seriesSymbol: 'KHBLai',
  number: 'SBLai',
  issueDate: 'NLap',
  currency: 'DVTTe',
  paymentMethod: 'HTTToan',
  lookupCode: 'MTCuu',
  related: 'TTBLLQuan',
  relatedNature: 'TCBLai',
  relatedTemplateSymbol: 'KHMSBLLQuan',
  relatedSeriesSymbol: 'KHBLLQuan',
  relatedNumber: 'SBLLQuan',
  relatedIssueDate: 'NLBLLQuan',
  relatedNote: 'GChu',
  otherInfo: 'TTKhac',
  otherItem: 'TTin',
  otherField: 'TTruong',
  otherType: 'KDLieu',
  otherValue: 'DLieu',
  content: 'NDBLai',
  collector: 'TCThu',
  name: 'Ten',
  taxCode: 'MST',
  address: 'DChi',
  budgetCode: 'MDVQHNSach',
  payer: 'NNop',
  payerIdNumber: 'CCCDan',
  fees: 'DSLPhi',
  fee: 'LPhi',
  feeName: 'TLPhi',
  feeAmount: 'TPhi',
  totals: 'TToan',
  totalDigits: 'TgTTTBSo',
  totalWords: 'TgTTTBChu',
  signatures: 'DSCKS',
  signer: 'TCThu',
};

/** Message version written in PBan (the 2025 format decision's value; check against the official one). */
export const FORMAT_VERSION = '2.1.0';

/** Values of the related-document nature (TCBLai), as in the invoice schema's TCHDon. */
export const RELATED_NATURE = { replace: '1', adjust: '2' } as const;
