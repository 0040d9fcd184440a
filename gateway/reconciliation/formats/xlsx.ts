/**
 * XLSX statement exports through a bank profile, with exceljs's streaming WorkbookReader: rows are
 * read as the sheet XML streams, one worksheet (the first) is read, the others are drained. Shared
 * strings are cached by exceljs (the xlsx layout puts them in a separate part), so memory grows
 * with the number of *distinct* strings, not with the rows. Legacy .xls is not read (refused as
 * not a zip).
 */
import type { Readable } from 'node:stream';
import ExcelJS from 'exceljs';
import { StatementError, malformed, type StatementEvent } from '../statement-line.js';
import type { BankProfile } from './bank-profiles.js';
import { TabularReader, type Cell, type TabularOptions } from './tabular.js';

function cellValue(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v instanceof Date) return v;
  if (typeof v === 'object') {
    const o = v as { richText?: { text: string }[]; text?: unknown; result?: unknown; error?: unknown };
    if (Array.isArray(o.richText)) return o.richText.map((r) => r.text).join('');
    if ('result' in o) return cellValue(o.result); // formula: take the cached result, never evaluate
    if (typeof o.text === 'string') return o.text; // hyperlink
    if (o.error !== undefined) return null;
  }
  return String(v);
}

export async function* parseBankXlsx(input: Readable, profile: BankProfile, options: TabularOptions = {}): AsyncGenerator<StatementEvent> {
  const reader = new TabularReader(profile, 'xlsx', options);
  let last = 0;
  let sheets = 0;
  try {
    const wb = new ExcelJS.stream.xlsx.WorkbookReader(input, { worksheets: 'emit', sharedStrings: 'cache', styles: 'cache', hyperlinks: 'ignore', entries: 'ignore' });
    for await (const ws of wb) {
      sheets++;
      for await (const row of ws as AsyncIterable<ExcelJS.Row>) {
        if (sheets > 1) continue;
        const values = Array.isArray(row.values) ? row.values.slice(1) : [];
        last = row.number;
        for (const ev of reader.row(values.map(cellValue), row.number)) yield ev;
      }
    }
  } catch (e) {
    if (e instanceof StatementError) throw e;
    throw new StatementError('FEEGATE_ERR_STATEMENT_MALFORMED', `not a readable XLSX workbook: ${String((e as Error)?.message ?? e).slice(0, 200)}`, last || null);
  }
  if (sheets === 0) throw malformed('the workbook has no worksheet', null);
  for (const ev of reader.end(last)) yield ev;
}
