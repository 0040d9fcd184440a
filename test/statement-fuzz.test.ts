/**
 * No input crashes a parser: every outcome is either parsed lines or a FeegateError with a stable
 * FEEGATE_ERR_STATEMENT_* code (never a TypeError, a RangeError, a hang or an uncoded throw).
 * Inputs: random text and bytes, and random damage to the real fixtures (bytes flipped, cut,
 * spliced), which reaches the deep paths random text never does.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import ExcelJS from 'exceljs';
import { collect, FIXTURES } from './helpers/statements.js';
import type { FormatName, ParseOptions } from '../gateway/reconciliation/formats/index.js';
import { findPaymentCodes, normaliseContent } from '../gateway/reconciliation/transfer-content.js';

const read = (f: string): Buffer => fs.readFileSync(path.join(FIXTURES, f));

async function outcome(format: FormatName, bytes: Buffer, options: ParseOptions = {}): Promise<string> {
  try {
    const { lines } = await collect(format, bytes, options);
    for (const l of lines) {
      if (typeof l.amountMinor !== 'bigint' || l.amountMinor < 0n) return `bad amount ${String(l.amountMinor)}`;
      if (!/^\d{4}-\d{2}-\d{2}$/.test(l.bookingDate)) return `bad date ${l.bookingDate}`;
      if (l.sourceLine < 1) return 'bad line number';
    }
    return 'ok';
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && code.startsWith('FEEGATE_ERR_STATEMENT_') ? 'refused' : `crash: ${(e as Error)?.stack ?? String(e)}`;
  }
}

const damage = (seed: Buffer) =>
  fc
    .tuple(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.option(fc.tuple(fc.nat(), fc.nat()), { nil: undefined }),
    )
    .map(([flips, cut, splice]) => {
      let b = Buffer.from(seed);
      for (const [at, v] of flips) b[at % b.length] = v;
      if (splice) {
        const a = splice[0] % b.length;
        const c = splice[1] % b.length;
        b = Buffer.concat([b.subarray(0, Math.min(a, c)), b.subarray(Math.max(a, c)), b.subarray(Math.min(a, c), Math.max(a, c))]);
      }
      if (cut !== undefined) b = b.subarray(0, cut % (b.length + 1));
      return b;
    });

const TEXT: { format: FormatName; seeds: string[]; options?: ParseOptions }[] = [
  { format: 'camt.053', seeds: ['camt053.v02.multi.xml', 'camt053.v08.currencies.xml', 'camt053.v04.xml'] },
  { format: 'camt.054', seeds: ['camt054.v08.xml'] },
  { format: 'mt940', seeds: ['mt940.multi.sta'] },
  { format: 'csv', seeds: ['vietcombank.csv'], options: { profile: 'vietcombank' } },
  { format: 'csv', seeds: ['bidv.csv'], options: { profile: 'bidv' } },
  { format: 'csv', seeds: ['vietinbank.csv'], options: { profile: 'vietinbank', account: '1' } },
  { format: 'csv', seeds: ['agribank.csv'], options: { profile: 'agribank' } },
];

for (const { format, seeds, options } of TEXT) {
  t.test(`${format} ${options?.profile ?? ''}: damaged fixtures and random input never crash`, async (t) => {
    for (const seed of seeds) {
      t.equal(await outcome(format, read(seed), options), 'ok', `${seed} parses undamaged`);
      await fc.assert(
        fc.asyncProperty(damage(read(seed)), async (b) => {
          const r = await outcome(format, b, options);
          if (r.startsWith('crash') || r.startsWith('bad')) throw new Error(r);
        }),
        { numRuns: 150 },
      );
    }
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 400 }).map((s) => Buffer.from(s)),
          fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
        ),
        async (b) => {
          const r = await outcome(format, b, options);
          if (r.startsWith('crash') || r.startsWith('bad')) throw new Error(r);
        },
      ),
      { numRuns: 150 },
    );
  });
}

t.test('xlsx: damaged workbooks never crash', async (t) => {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet('s');
  ws.addRow(['Số tài khoản:', '1']);
  ws.addRow(['Ngày giao dịch', 'Số tiền ghi nợ', 'Số tiền ghi có', 'Mô tả']);
  ws.addRow([new Date(Date.UTC(2026, 2, 10)), null, 1000, 'FG00000000000000000000']);
  const seed = Buffer.from(await wb.xlsx.writeBuffer());
  t.equal(await outcome('xlsx', seed, { profile: 'bidv' }), 'ok');
  await fc.assert(
    fc.asyncProperty(damage(seed), async (b) => {
      const r = await outcome('xlsx', b, { profile: 'bidv', stallMs: 300 });
      if (r.startsWith('crash') || r.startsWith('bad')) throw new Error(r);
    }),
    { numRuns: 60 },
  );
});

t.test('transfer-content functions are total on any string', async (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300, unit: 'grapheme' }), (s) => {
      const n = normaliseContent(s);
      if (n.raw !== s || typeof n.normalised !== 'string') throw new Error('raw not kept');
      findPaymentCodes(s);
      findPaymentCodes(n.normalised);
    }),
    { numRuns: 2000 },
  );
  t.pass('no throw');
});
