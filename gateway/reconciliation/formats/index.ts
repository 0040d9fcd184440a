/** One entry point over every statement format; the caller names the format (never sniffed). */
import type { Readable } from 'node:stream';
import { StatementError, type StatementEvent, type StatementSource } from '../statement-line.js';
import { bankProfile } from './bank-profiles.js';
import { parseCamt053 } from './camt053.js';
import { parseCamt054 } from './camt054.js';
import { parseBankCsv } from './csv.js';
import { parseMt940 } from './mt940.js';
import type { TextEncoding } from './text-input.js';
import { parseBankXlsx } from './xlsx.js';

export interface ParseOptions {
  source?: StatementSource;
  /** Required for csv and xlsx: a key of BANK_PROFILES. */
  profile?: string;
  account?: string;
  statementId?: string;
  encoding?: TextEncoding;
  /** xlsx only: see XlsxOptions.stallMs. */
  stallMs?: number;
}

export type FormatName = 'camt.053' | 'camt.054' | 'mt940' | 'csv' | 'xlsx';

/** Refusals (an unknown format or profile included) surface from the first `next()`, never as a synchronous throw. */
export async function* parseStatement(format: FormatName, input: Readable, options: ParseOptions = {}): AsyncGenerator<StatementEvent> {
  yield* pick(format, input, options);
}

function pick(format: FormatName, input: Readable, options: ParseOptions): AsyncGenerator<StatementEvent> {
  switch (format) {
    case 'camt.053':
      return parseCamt053(input, options);
    case 'camt.054':
      return parseCamt054(input, options);
    case 'mt940':
      return parseMt940(input, options);
    case 'csv':
    case 'xlsx': {
      const profile = options.profile === undefined ? undefined : bankProfile(options.profile);
      if (!profile) throw new StatementError('FEEGATE_ERR_STATEMENT_UNSUPPORTED', `no bank profile "${String(options.profile).slice(0, 40)}"`, null);
      return format === 'csv' ? parseBankCsv(input, profile, options) : parseBankXlsx(input, profile, options);
    }
    default:
      throw new StatementError('FEEGATE_ERR_STATEMENT_UNSUPPORTED', `no statement format "${String(format).slice(0, 40)}"`, null);
  }
}
