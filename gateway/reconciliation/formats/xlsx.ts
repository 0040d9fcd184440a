/**
 * XLSX statement exports through a bank profile, with exceljs's streaming WorkbookReader: rows are
 * read as the sheet XML streams, one worksheet (the first) is read, the others are drained. Shared
 * strings are cached by exceljs (the xlsx layout puts them in a separate part), so memory grows
 * with the number of *distinct* strings, not with the rows. Legacy .xls is not read (refused as
 * not a zip).
 */
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
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

/**
 * Checks the zip signature before exceljs sees a byte (an empty file, a legacy .xls or a renamed
 * CSV is refused: exceljs's reader never settles on an empty stream), then pumps the rest through
 * a PassThrough. exceljs does not listen for errors on its input, so an error upstream is kept and
 * the PassThrough ended: exceljs then fails on a truncated zip and we report the upstream error.
 */
async function zipSource(input: Readable): Promise<{ src: PassThrough; failure: () => unknown; doneAt: () => number | null }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let head = Buffer.alloc(0);
  while (head.length < 4) {
    const n = await it.next();
    if (n.done) throw new StatementError('FEEGATE_ERR_STATEMENT_UNSUPPORTED', 'not an XLSX file (shorter than a zip header)', null);
    head = Buffer.concat([head, typeof n.value === 'string' ? Buffer.from(n.value) : n.value]);
  }
  if (head.readUInt32LE(0) !== 0x04034b50)
    throw new StatementError(
      'FEEGATE_ERR_STATEMENT_UNSUPPORTED',
      'not an XLSX file (no zip signature; legacy .xls is not read: save as .xlsx or CSV UTF-8)',
      null,
    );
  const src = new PassThrough();
  let failure: unknown = null;
  let doneAt: number | null = null;
  src.write(head);
  void (async () => {
    try {
      for (;;) {
        const n = await it.next();
        if (n.done) break;
        if (!src.write(n.value)) await once(src, 'drain');
      }
    } catch (e) {
      failure = e;
    }
    doneAt = Date.now();
    src.end();
  })();
  return { src, failure: () => failure, doneAt: () => doneAt };
}

export interface XlsxOptions extends TabularOptions {
  /** How long exceljs may sit idle after the last byte arrived before the file is refused (ms). */
  stallMs?: number;
}

/**
 * exceljs's reader can leave its promises pending forever on some damaged zips (found by the
 * fuzz test): once every byte has been handed over, a reader idle for `stallMs` is given up and
 * the file refused, instead of an import that never ends.
 */
function guard<T>(iterable: AsyncIterable<T>, stalled: Promise<never>, progress: () => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = iterable[Symbol.asyncIterator]();
      return {
        async next() {
          const r = await Promise.race([it.next(), stalled]);
          progress();
          return r;
        },
        async return() {
          return (await it.return?.()) ?? { done: true as const, value: undefined };
        },
      };
    },
  };
}

export async function* parseBankXlsx(input: Readable, profile: BankProfile, options: XlsxOptions = {}): AsyncGenerator<StatementEvent> {
  const reader = new TabularReader(profile, 'xlsx', options);
  const stallMs = options.stallMs ?? 10_000;
  let last = 0;
  let sheets = 0;
  const { src, failure, doneAt } = await zipSource(input);
  let lastProgress = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(
      () => {
        const done = doneAt();
        if (done !== null && Date.now() - Math.max(done, lastProgress) > stallMs) {
          reject(new StatementError('FEEGATE_ERR_STATEMENT_MALFORMED', 'not a readable XLSX workbook (the reader stalled on a damaged zip)', last || null));
        }
      },
      Math.min(250, stallMs),
    );
  });
  stalled.catch(() => undefined);
  const progress = (): void => {
    lastProgress = Date.now();
  };
  try {
    const wb = new ExcelJS.stream.xlsx.WorkbookReader(src, {
      worksheets: 'emit',
      sharedStrings: 'cache',
      styles: 'cache',
      hyperlinks: 'ignore',
      entries: 'ignore',
    });
    for await (const ws of guard(wb as AsyncIterable<ExcelJS.stream.xlsx.WorksheetReader>, stalled, progress)) {
      sheets++;
      for await (const row of guard(ws as unknown as AsyncIterable<ExcelJS.Row>, stalled, progress)) {
        if (sheets > 1) continue;
        const values = Array.isArray(row.values) ? row.values.slice(1) : [];
        last = row.number;
        for (const ev of reader.row(values.map(cellValue), row.number)) yield ev;
      }
    }
  } catch (e) {
    if (failure()) throw failure();
    if (e instanceof StatementError) throw e;
    throw new StatementError(
      'FEEGATE_ERR_STATEMENT_MALFORMED',
      `not a readable XLSX workbook: ${String((e as Error)?.message ?? e).slice(0, 200)}`,
      last || null,
    );
  } finally {
    clearInterval(timer);
    src.destroy();
  }
  if (failure()) throw failure();
  if (sheets === 0) throw malformed('the workbook has no worksheet', null);
  for (const ev of reader.end(last)) yield ev;
}
