/**
 * CSV statement exports through a bank profile (bank-profiles.ts). csv-parse streams records
 * (delimiter ',', ';' or tab, quotes, a BOM, ragged rows); the text comes through decodeText, so a
 * non-UTF-8 file is refused with FEEGATE_ERR_STATEMENT_ENCODING unless its encoding is declared.
 */
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { StatementError, malformed, type StatementEvent } from '../statement-line.js';
import type { BankProfile } from './bank-profiles.js';
import { TabularReader, type TabularOptions } from './tabular.js';
import { decodeText, type TextEncoding } from './text-input.js';

export interface CsvOptions extends TabularOptions {
  encoding?: TextEncoding;
  delimiter?: string;
}

export async function* parseBankCsv(input: Readable, profile: BankProfile, options: CsvOptions = {}): AsyncGenerator<StatementEvent> {
  const reader = new TabularReader(profile, 'csv', options);
  const parser = parse({
    delimiter: options.delimiter ?? [',', ';', '\t'],
    relax_column_count: true,
    info: true,
    bom: true,
    skip_empty_lines: false,
    max_record_size: 65_536,
    trim: false,
  });
  // Exports put a title and the account above the header, so rows differ in length from the first
  // one; csv-parse then builds (and, relaxed, drops) a CsvError per row, whose stack trace cost 2/3
  // of the parse time. No stack is captured inside its synchronous transform; restored after.
  const transform = parser._transform.bind(parser);
  parser._transform = (chunk, enc, cb) => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      transform(chunk, enc, cb);
    } finally {
      Error.stackTraceLimit = limit;
    }
  };
  const text = Readable.from(decodeText(input, options.encoding));
  text.on('error', (e) => parser.destroy(e));
  text.pipe(parser);
  let last = 0;
  try {
    for await (const rec of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      last = rec.info.lines;
      for (const ev of reader.row(rec.record, rec.info.lines)) yield ev;
    }
  } catch (e) {
    if (e instanceof StatementError) throw e;
    const err = e as { code?: string; message?: string; lines?: number; column?: number };
    throw malformed(`not a well-formed CSV file: ${(err.message ?? String(e)).slice(0, 200)}`, typeof err.lines === 'number' ? err.lines : last + 1);
  } finally {
    text.destroy();
  }
  for (const ev of reader.end(last)) yield ev;
}
