import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseStatement, type FormatName, type ParseOptions } from '../../gateway/reconciliation/formats/index.js';
import type { StatementInfo, StatementLine } from '../../gateway/reconciliation/statement-line.js';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'statements');

export function fixture(name: string): Readable {
  return fs.createReadStream(path.join(FIXTURES, name));
}

export interface Parsed {
  lines: StatementLine[];
  statements: StatementInfo[];
}

export async function collect(format: FormatName, input: Readable | Buffer | string, options: ParseOptions = {}): Promise<Parsed> {
  const stream = typeof input === 'string' || Buffer.isBuffer(input) ? Readable.from([Buffer.from(input)]) : input;
  const out: Parsed = { lines: [], statements: [] };
  for await (const ev of parseStatement(format, stream, options)) {
    if (ev.kind === 'line') out.lines.push(ev.line);
    else out.statements.push(ev.statement);
  }
  return out;
}

/** The refusal, or a failure message if the parse succeeded. */
export async function refusal(
  format: FormatName,
  input: Readable | Buffer | string,
  options: ParseOptions = {},
): Promise<{ code: string; line: number | null; column: number | null; message: string }> {
  try {
    await collect(format, input, options);
  } catch (e) {
    const err = e as { code?: string; line?: number | null; column?: number | null; message: string };
    return { code: err.code ?? `uncoded: ${err.message}`, line: err.line ?? null, column: err.column ?? null, message: err.message };
  }
  return { code: 'parsed', line: null, column: null, message: 'parsed without error' };
}
