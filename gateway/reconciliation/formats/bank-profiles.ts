/**
 * Declarative profiles for the CSV/XLSX statement exports ("sao kê", "sổ phụ") of Vietnamese banks.
 * One data object per bank; no code. Columns are found by header keywords (compared after folding:
 * no diacritics, lower case, single spaces, so "Số tiền ghi có", "So tien ghi co" and "SỐ TIỀN GHI
 * CÓ" are one keyword), never by position; the header row is searched for in the first
 * `headerSearchRows` rows, since exports put a title, the account and the period above it.
 * Layouts from reconciliation.md §3.1 (public MTTQ statement shapes, TPBank README).
 */

export type ColumnRole =
  'bookingDate' | 'valueDate' | 'debit' | 'credit' | 'amount' | 'content' | 'reference' | 'balance' | 'counterpartyName' | 'counterpartyAccount';

export interface BankProfile {
  id: string;
  bank: string;
  /** Keywords per column, most specific first. A cell equal to a keyword wins over one containing it. */
  columns: Partial<Record<ColumnRole, string[]>>;
  /** 'split': a debit and a credit column; 'signed': one amount column, negative = debit. */
  sign: 'split' | 'signed';
  thousands: '.' | ',';
  decimal: '.' | ',';
  currency: string;
  headerSearchRows: number;
  /** Rows above the header (or after the data) that carry statement data: "Số tài khoản: 0071…". */
  meta: { account: string[]; opening: string[]; closing: string[] };
  /** Rows after the data that end it or are to be skipped (totals, printed-by notes, page footers). */
  footer: string[];
}

const DATE = ['ngay giao dich', 'ngay gd', 'ngay hach toan', 'ngay', 'transaction date', 'posting date', 'date'];
const VALUE_DATE = ['ngay hieu luc', 'ngay gia tri', 'value date', 'effective date'];
const CONTENT = ['noi dung giao dich', 'noi dung', 'dien giai', 'mo ta', 'chi tiet giao dich', 'transaction details', 'description', 'details', 'narrative'];
const DEBIT = ['so tien ghi no', 'ghi no', 'phat sinh no', 'no', 'so tien rut', 'debit amount', 'debit', 'withdrawal'];
const CREDIT = ['so tien ghi co', 'ghi co', 'phat sinh co', 'co', 'so tien gui', 'credit amount', 'credit', 'deposit'];
const REF = ['so ct', 'so chung tu', 'so but toan', 'so tham chieu', 'ma giao dich', 'so giao dich', 'doc no', 'reference', 'transaction no', 'ref no'];
const BALANCE = ['so du', 'balance'];
const META = {
  account: ['so tai khoan', 'tai khoan', 'account number', 'account no'],
  opening: ['so du dau ky', 'so du dau', 'opening balance', 'beginning balance'],
  closing: ['so du cuoi ky', 'so du cuoi', 'closing balance', 'ending balance'],
};
const FOOTER = ['tong cong', 'tong so', 'cong phat sinh', 'total', 'chung tu nay duoc in', 'nguoi lap', 'ke toan truong', 'page '];

export const BANK_PROFILES: Record<string, BankProfile> = {
  // Vietcombank account statement: STT · Ngày GD · Số CT (5243.65937) · Ghi nợ · Ghi có · Số dư · Nội dung; comma thousands.
  vietcombank: {
    id: 'vietcombank',
    bank: 'Vietcombank',
    sign: 'split',
    thousands: ',',
    decimal: '.',
    currency: 'VND',
    headerSearchRows: 30,
    columns: { bookingDate: DATE, reference: REF, debit: DEBIT, credit: CREDIT, balance: BALANCE, content: CONTENT },
    meta: META,
    footer: FOOTER,
  },
  // BIDV: STT · Ngày giao dịch (10/09/2024 01:03:56) · Số tiền ghi nợ (VND) · Số tiền ghi có (VND) · Số dư · Mô tả; '.' thousands.
  bidv: {
    id: 'bidv',
    bank: 'BIDV',
    sign: 'split',
    thousands: '.',
    decimal: ',',
    currency: 'VND',
    headerSearchRows: 30,
    columns: { bookingDate: DATE, debit: DEBIT, credit: CREDIT, balance: BALANCE, content: CONTENT, reference: REF },
    meta: META,
    footer: FOOTER,
  },
  // VietinBank: STT · Ngày giao dịch · Mô tả giao dịch · Số tiền (signed) · Tên đối ứng · Tài khoản đối ứng; '.' thousands.
  vietinbank: {
    id: 'vietinbank',
    bank: 'VietinBank',
    sign: 'signed',
    thousands: '.',
    decimal: ',',
    currency: 'VND',
    headerSearchRows: 30,
    columns: {
      bookingDate: DATE,
      content: ['mo ta giao dich', ...CONTENT],
      amount: ['so tien giao dich', 'so tien', 'amount'],
      counterpartyName: ['ten doi ung', 'ten tai khoan doi ung', 'counterparty name'],
      counterpartyAccount: ['tai khoan doi ung', 'so tai khoan doi ung', 'counterparty account'],
      reference: REF,
    },
    meta: META,
    footer: FOOTER,
  },
  // Agribank: Ngày · Diễn giải · Phát sinh nợ · Phát sinh có · Số dư; comma thousands (50,000).
  agribank: {
    id: 'agribank',
    bank: 'Agribank',
    sign: 'split',
    thousands: ',',
    decimal: '.',
    currency: 'VND',
    headerSearchRows: 30,
    columns: { bookingDate: DATE, valueDate: VALUE_DATE, content: CONTENT, debit: DEBIT, credit: CREDIT, balance: BALANCE, reference: REF },
    meta: META,
    footer: FOOTER,
  },
};

export function bankProfile(id: string): BankProfile | undefined {
  return Object.hasOwn(BANK_PROFILES, id) ? BANK_PROFILES[id] : undefined;
}
