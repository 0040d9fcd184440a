/**
 * The one statement-line model every format produces (camt.053/.054, MT940, bank CSV/XLSX profiles,
 * later provider settlement files and real-time bank credit feeds). Pure data: no database, no HTTP.
 *
 * Parsers stream: they yield `line` events as entries close and a `statement` event when a statement
 * (camt `Stmt`/`Ntfctn`, MT940 `:20:`…`:62F:`, one CSV/XLSX export) ends, so a file with several
 * statements yields several statement events, each after its own lines.
 */
import crypto from 'node:crypto';
import { FeegateError, type ErrorCode } from '../errors.js';

export type StatementSource = 'bank_statement' | 'provider_settlement' | 'bank_feed';
export type Direction = 'credit' | 'debit';
export type StatementFormat = 'camt.053' | 'camt.054' | 'mt940' | 'csv' | 'xlsx';

export interface StatementLine {
  source: StatementSource;
  format: StatementFormat;
  /** IBAN or bank account number of the account the statement is about (ours). */
  account: string;
  /** camt Stmt/Id or Ntfctn/Id, MT940 `:20:`/`:28C:`, or the profile's id for a CSV/XLSX export. */
  statementId: string;
  /** Vietnam business date (Asia/Ho_Chi_Minh, UTC+7, no DST), yyyy-mm-dd. */
  bookingDate: string;
  valueDate: string | null;
  /** Amount in the currency's minor units (ISO 4217 exponent: VND 0, USD 2, BHD 3), always positive. */
  amountMinor: bigint;
  currency: string;
  direction: Direction;
  /** camt RvslInd=true, MT940 RC/RD: this line undoes an earlier one. */
  reversal: boolean;
  /**
   * The bank's own reference for the entry (camt AcctSvcrRef, MT940 `//` bank reference, the CSV
   * "số CT"/"số bút toán" column). With `batchIndex` it is the per-line dedupe key (see dedupeKey).
   */
  bankReference: string | null;
  /** 0-based position of this line in a camt batch (several TxDtls in one Ntry); null when not a batch. */
  batchIndex: number | null;
  endToEndId: string | null;
  counterpartyName: string | null;
  counterpartyAccount: string | null;
  /** The transfer content as the bank sent it (nội dung chuyển khoản), kept to show staff. */
  contentRaw: string;
  /** transfer-content.ts normaliseContent(contentRaw).normalised: what matching reads. */
  contentNormalised: string;
  /** 1-based line of the file where the entry starts (XML line of `<Ntry>`, MT940 `:61:`, CSV row). */
  sourceLine: number;
  /**
   * A provisional line is one that may still change: a real-time bank credit feed line (Casso,
   * SePay, payOS), a camt `Sts` PDNG entry. The day's final statement confirms it later. How
   * confirmation will match (issue 12, storage step): first on account + bankReference (the feed's
   * reference, e.g. SePay `referenceCode` MBVCB.<n> or FT…, equals the statement's AcctSvcrRef /
   * "số CT"), else on account + amountMinor + direction + bookingDate (± 1 business day for the
   * 22:00–05:00 next-day booking) + contentNormalised equal; the confirmed final line supersedes the
   * provisional one, which is kept for the audit trail, never deleted.
   */
  provisional: boolean;
}

export interface StatementBalance {
  /** Signed: a debit (overdrawn) balance is negative. Minor units of `currency`. */
  amountMinor: bigint;
  currency: string;
  date: string | null;
}

export interface StatementInfo {
  source: StatementSource;
  format: StatementFormat;
  /** e.g. 'camt.053.001.08', 'mt940', 'vietcombank' (the profile id). */
  formatVersion: string;
  statementId: string;
  account: string;
  currency: string | null;
  /** Opening booked balance (camt OPBD or PRCD, MT940 :60F:/:60M:, "số dư đầu kỳ"). */
  opening: StatementBalance | null;
  /** Closing booked balance (camt CLBD, MT940 :62F:/:62M:, "số dư cuối kỳ"). */
  closing: StatementBalance | null;
  /** MT940 :60M:/:62M: say the statement continues on another page: balance checks span pages. */
  intermediate: boolean;
  lineCount: number;
  creditsMinor: bigint;
  debitsMinor: bigint;
  sourceLine: number;
}

export type StatementEvent = { kind: 'line'; line: StatementLine } | { kind: 'statement'; statement: StatementInfo };

/** The refusal every parser throws: a stable code plus where in the file. */
export class StatementError extends FeegateError {
  readonly line: number | null;
  readonly column: number | null;
  constructor(code: ErrorCode, message: string, line: number | null, column: number | null = null) {
    super(code, line === null ? message : `line ${line}${column === null ? '' : `, column ${column}`}: ${message}`, { line, column });
    this.name = 'StatementError';
    this.line = line;
    this.column = column;
  }
}

export function malformed(message: string, line: number | null, column: number | null = null): StatementError {
  return new StatementError('FEEGATE_ERR_STATEMENT_MALFORMED', message, line, column);
}

/**
 * Per-line dedupe key: the bank's reference (plus the batch position) when the bank gives one,
 * otherwise a hash of what identifies the movement (reconciliation.md §2.1). Re-importing the same
 * statement, or an overlapping one, yields the same keys.
 */
export function dedupeKey(line: StatementLine): string {
  if (line.bankReference) return `ref:${line.account}:${line.bankReference}${line.batchIndex === null ? '' : `#${line.batchIndex}`}`;
  const h = crypto.createHash('sha256');
  for (const v of [
    line.account,
    line.bookingDate,
    line.amountMinor.toString(),
    line.currency,
    line.direction,
    String(line.reversal),
    line.endToEndId ?? '',
    line.contentNormalised,
    String(line.batchIndex ?? ''),
  ]) {
    h.update(v).update('\u0000'); // a separator no field can contain, so fields cannot slide into each other
  }
  return `hash:${h.digest('hex')}`;
}

/** Running totals a parser keeps per statement (for the balance-gap check later). */
export class StatementTotals {
  lineCount = 0;
  creditsMinor = 0n;
  debitsMinor = 0n;
  add(line: StatementLine): void {
    this.lineCount++;
    if (line.direction === 'credit') this.creditsMinor += line.amountMinor;
    else this.debitsMinor += line.amountMinor;
  }
}
