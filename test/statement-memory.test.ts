/**
 * Memory does not grow with the file: 200,000 camt entries and 200,000 CSV rows, generated as a
 * stream (never a fixture, never one string), parse with the heap bounded far below both the file
 * size and what keeping the lines would take. The bound is generous (GC timing varies on a loaded
 * machine); a parser that kept its lines or the file would exceed it several times over.
 * Throughput figures belong in `npm run bench`, not here.
 */
import t from 'tap';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parseStatement, type FormatName, type ParseOptions } from '../gateway/reconciliation/formats/index.js';

const N = 200_000;
const BOUND = 48 * 1024 * 1024;
// Retained memory, not garbage: a full GC before each sample (heapUsed alone counts garbage V8 has
// not yet collected, which says nothing about what the parser keeps).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function generated(head: string, row: (i: number) => string, tail: string): { stream: Readable; bytes: () => number } {
  let bytes = 0;
  function* chunks(): Generator<Buffer> {
    let buf = head;
    for (let i = 0; i < N; i++) {
      buf += row(i);
      if (buf.length > 64 * 1024) {
        const b = Buffer.from(buf);
        bytes += b.length;
        yield b;
        buf = '';
      }
    }
    const b = Buffer.from(buf + tail);
    bytes += b.length;
    yield b;
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), bytes: () => bytes };
}

async function measure(format: FormatName, input: Readable, options: ParseOptions = {}): Promise<{ lines: number; credits: bigint; peakGrowth: number }> {
  gc();
  const base = process.memoryUsage().heapUsed;
  let peak = 0;
  let lines = 0;
  let credits = 0n;
  for await (const ev of parseStatement(format, input, options)) {
    if (ev.kind !== 'line') continue;
    lines++;
    credits += ev.line.amountMinor;
    if (lines % 20_000 === 0) {
      gc();
      peak = Math.max(peak, process.memoryUsage().heapUsed - base);
    }
  }
  return { lines, credits, peakGrowth: peak };
}

t.test('200,000 camt.053 entries stream with bounded heap', async (t) => {
  const head =
    '<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr>\n<Stmt><Id>BIG</Id><Acct><Id><Othr><Id>0071000123456</Id></Othr></Id></Acct>\n';
  const row = (i: number): string =>
    `<Ntry><Amt Ccy="VND">${1000 + (i % 997)}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-03-10</Dt></BookgDt><AcctSvcrRef>R${i}</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>E${i}</EndToEndId></Refs><RltdPties><Dbtr><Pty><Nm>NGUYEN VAN ${i}</Nm></Pty></Dbtr></RltdPties><RmtInf><Ustrd>MBVCB.${2427229823 + i}.174242.FG${i.toString(16).toUpperCase().padStart(20, '0')}.CT tu 0123456789 NGUYEN VAN A toi 0071000123456 TRUONG THCS</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>\n`;
  const g = generated(head, row, '</Stmt></BkToCstmrStmt></Document>\n');
  let expected = 0n;
  for (let i = 0; i < N; i++) expected += BigInt(1000 + (i % 997));
  const r = await measure('camt.053', g.stream);
  t.equal(r.lines, N);
  t.equal(r.credits, expected, 'every entry read, amounts exact');
  t.ok(g.bytes() > BOUND, `the file (${(g.bytes() / 1e6).toFixed(0)} MB) is larger than the bound`);
  t.ok(r.peakGrowth < BOUND, `heap grew at most ${(r.peakGrowth / 1e6).toFixed(1)} MB (bound ${BOUND / 1e6} MB)`);
});

t.test('200,000 bank CSV rows stream with bounded heap', async (t) => {
  const head = 'Số tài khoản: 0071000123456\nSố dư đầu kỳ,"0"\nSTT,Ngày GD,Số CT,Ghi nợ,Ghi có,Số dư,Nội dung\n';
  const row = (i: number): string =>
    `${i + 1},10/03/2026,5243.${i},,"${(1000 + (i % 997)).toLocaleString('en-US')}",,"MBVCB.${2427229823 + i}.174242.FG${i.toString(16).toUpperCase().padStart(20, '0')}.CT tu 0123456789 NGUYEN VAN A toi 0071000123456 TRUONG THCS hoc phi hoc ky 2 nam hoc 2025-2026 lop 6A"\n`;
  const g = generated(head, row, '');
  const r = await measure('csv', g.stream, { profile: 'vietcombank' });
  t.equal(r.lines, N);
  t.ok(g.bytes() > 30e6, `the file is ${(g.bytes() / 1e6).toFixed(0)} MB; keeping its 200,000 lines would take several times the bound`);
  t.ok(r.peakGrowth < BOUND, `heap grew at most ${(r.peakGrowth / 1e6).toFixed(1)} MB (bound ${BOUND / 1e6} MB)`);
});
