import t from 'tap';
import { Readable } from 'node:stream';
import ExcelJS from 'exceljs';
import iconv from 'iconv-lite';
import { collect, fixture, refusal } from './helpers/statements.js';
import { dedupeKey } from '../gateway/reconciliation/statement-line.js';
import { parseAmount } from '../gateway/reconciliation/amount.js';

t.test('camt.053 v02: several statements, batch split per TxDtls, reversal, balances, VN date of a DtTm', async (t) => {
  const { lines, statements } = await collect('camt.053', fixture('camt053.v02.multi.xml'));
  t.equal(statements.length, 2);
  const [s1, s2] = statements;
  t.match(s1, { formatVersion: 'camt.053.001.02', statementId: 'STMT-0071000123456-20260310', account: '0071000123456', lineCount: 5 });
  t.equal(s1!.opening!.amountMinor, 10_000_000n);
  t.equal(s1!.closing!.amountMinor, 10_416_000n);
  t.equal(s1!.opening!.amountMinor + s1!.creditsMinor - s1!.debitsMinor, s1!.closing!.amountMinor, 'opening + movements = closing');
  t.equal(s2!.opening!.amountMinor, -500n, 'a DBIT balance (PRCD used as opening) is negative');
  t.equal(s2!.account, 'VN12ABCD0000000001', 'IBAN account');

  t.equal(lines.length, 6);
  const first = lines[0]!;
  t.match(first, {
    amountMinor: 58_000n,
    currency: 'VND',
    direction: 'credit',
    bankReference: '5243.65937',
    counterpartyName: 'NGUYEN VAN A',
    counterpartyAccount: '0123456789',
    endToEndId: null,
    sourceLine: 28,
    batchIndex: null,
  });
  t.equal(first.contentNormalised, 'FG0A1B2C3D4E5F60718293', 'the MBVCB wrapper is peeled');
  t.match(first.contentRaw, /^MBVCB\.2427229823/, 'raw content kept');

  const batch = lines.filter((l) => l.bankReference?.startsWith('5243.65940'));
  t.same(
    batch.map((l) => l.amountMinor),
    [100_000n, 150_000n, 200_000n],
    'one line per TxDtls with its own amount',
  );
  t.same(
    batch.map((l) => l.batchIndex),
    [0, 1, 2],
  );
  t.same(
    batch.map((l) => l.endToEndId),
    ['E2E-1', 'E2E-2', 'E2E-3'],
  );
  t.equal(batch[0]!.bookingDate, '2026-03-11', '17:30Z is 00:30 the next day in Vietnam');
  t.equal(batch[1]!.contentRaw, 'FG22222222 222222222222 dong phi', 'several Ustrd are joined');
  t.equal(batch[2]!.contentNormalised, 'HOC PHI THANG 3 DO VAN DAT');
  t.equal(new Set(lines.map(dedupeKey)).size, lines.length, 'dedupe keys are distinct per line');

  const rev = lines.find((l) => l.reversal)!;
  t.match(rev, { direction: 'debit', amountMinor: 92_000n, bankReference: '5243.65990', contentRaw: 'REVERSAL OF 5243.65001' });
  t.equal(lines[5]!.provisional, true, 'a PDNG entry is provisional');
  t.equal(lines.filter((l) => l.provisional).length, 1);
});

t.test('camt.053 v08: prefixed namespace, Sts/Cd, Pty/Nm, five decimals, USD and KWD exponents', async (t) => {
  const { lines, statements } = await collect('camt.053', fixture('camt053.v08.currencies.xml'));
  t.equal(statements.length, 2);
  t.equal(statements[0]!.formatVersion, 'camt.053.001.08');
  t.equal(statements[0]!.opening!.amountMinor, 100_000n, '1000.00000 EUR = 100000 cents');
  t.match(lines[0], {
    amountMinor: 88_510n,
    currency: 'EUR',
    counterpartyName: 'Schule Berlin e.V.',
    counterpartyAccount: 'DE02120300000000202051',
    endToEndId: 'E2E-EUR-1',
    contentRaw: 'RF18539007547034',
  });
  t.match(lines[1], { amountMinor: 1250n, currency: 'USD', direction: 'debit', counterpartyName: 'ACME Inc' });
  t.match(lines[2], { amountMinor: 1234n, currency: 'KWD' });
});

t.test('camt.053 older version 001.04 parses; camt.054 notifications; wrong message refused', async (t) => {
  const old = await collect('camt.053', fixture('camt053.v04.xml'));
  t.equal(old.statements[0]!.formatVersion, 'camt.053.001.04');
  t.match(old.lines[0], { amountMinor: 75_000n, counterpartyName: 'LE VAN C' });

  const n = await collect('camt.054', fixture('camt054.v08.xml'));
  t.equal(n.statements[0]!.format, 'camt.054');
  t.same(
    n.lines.map((l) => l.contentNormalised),
    ['FG33333333333333333333', 'FG44444444444444444444'],
  );
  t.same(
    n.lines.map((l) => l.amountMinor),
    [100_000n, 200_000n],
  );
  t.equal(new Set(n.lines.map(dedupeKey)).size, 2, 'batch lines sharing one AcctSvcrRef get distinct keys');

  t.match(await refusal('camt.054', fixture('camt053.v04.xml')), { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED', line: 2 });
  t.match(await refusal('camt.053', '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>'), { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED' });
  t.match(await refusal('camt.053', '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.99"/>'), { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED' });
});

t.test('camt refusals: truncated XML, DTD/entities, bad amount, missing fields, batch that does not add up, non-UTF-8', async (t) => {
  t.match(await refusal('camt.053', fixture('camt053.truncated.xml')), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', line: 9 });
  t.match(await refusal('camt.053', fixture('camt053.dtd.xml')), { code: 'FEEGATE_ERR_STATEMENT_DTD_FORBIDDEN', line: 2 });
  const doc = (ntry: string): string =>
    `<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>\n<Stmt><Id>S</Id><Acct><Id><Othr><Id>1</Id></Othr></Id></Acct>\n${ntry}\n</Stmt></BkToCstmrStmt></Document>`;
  const entry = (amt: string, extra = ''): string =>
    `<Ntry><Amt Ccy="VND">${amt}</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2026-03-10</Dt></BookgDt>${extra}</Ntry>`;
  t.equal((await collect('camt.053', doc(entry('1000')))).lines[0]!.amountMinor, 1000n, 'the template parses');
  t.match(await refusal('camt.053', doc(entry('1,000'))), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', line: 4 });
  t.match(await refusal('camt.053', doc(entry('1000.5'))), { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED', line: 4 }, 'VND has no decimals: never rounded');
  t.match(await refusal('camt.053', doc('<Ntry><Amt Ccy="VND">1</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>')), {
    code: 'FEEGATE_ERR_STATEMENT_MALFORMED',
    line: 4,
    message: /BookgDt/,
  });
  t.match(await refusal('camt.053', doc(entry('1', '').replace('CRDT', 'XXXX'))), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', message: /CdtDbtInd/ });
  const batch = '<NtryDtls><TxDtls><Amt Ccy="VND">400</Amt></TxDtls><TxDtls><Amt Ccy="VND">500</Amt></TxDtls></NtryDtls>';
  t.match(await refusal('camt.053', doc(entry('1000', batch))), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', message: /add up/ });
  t.match(await refusal('camt.053', doc(entry('1000').replace('2026-03-10', '2026-02-30'))), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', message: /ISO date/ });
  t.match(await refusal('camt.053', '<?xml version="1.0" encoding="ISO-8859-1"?><Document/>'), { code: 'FEEGATE_ERR_STATEMENT_ENCODING' });
  t.match(
    await refusal(
      'camt.053',
      Buffer.concat([Buffer.from(doc(entry('1', '<AddtlNtryInf>H')).slice(0, 150)), Buffer.from([0xc3, 0x28]), Buffer.from('</AddtlNtryInf>')]),
    ),
    { code: 'FEEGATE_ERR_STATEMENT_ENCODING' },
  );
  t.match(await refusal('camt.053', ''), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED' });
  const endless = Readable.from(
    (function* () {
      yield Buffer.from('<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt><Id>S</Id><AddtlStmtInf>');
      for (let i = 0; i < 64; i++) yield Buffer.alloc(64 * 1024, 0x61); // 4 MiB of one text node, never closed
    })(),
    { objectMode: false },
  );
  t.match(await refusal('camt.053', endless), { code: 'FEEGATE_ERR_STATEMENT_TOO_COMPLEX', message: /without markup/ });
  t.match(await refusal('camt.053', doc(`<Ntry><Amt Ccy="VND">1</Amt><AddtlNtryInf>${'x'.repeat(20_000)}</AddtlNtryInf></Ntry>`)), {
    code: 'FEEGATE_ERR_STATEMENT_TOO_COMPLEX',
  });
});

t.test('MT940: several statements, RC reversal, :86: continuation, comma amounts, missing final CRLF, year end', async (t) => {
  const { lines, statements } = await collect('mt940', fixture('mt940.multi.sta'));
  t.equal(statements.length, 2);
  t.match(statements[0], { statementId: 'STARTUMS/00065/001', account: '0071000123456', currency: 'VND', lineCount: 2, intermediate: false });
  t.equal(statements[0]!.opening!.amountMinor + statements[0]!.creditsMinor - statements[0]!.debitsMinor, statements[0]!.closing!.amountMinor);
  t.match(statements[1], { account: 'NL91ABNA0417164300', currency: 'EUR', intermediate: true });
  t.equal(statements[1]!.opening!.amountMinor, -10_050n, ':60M:D…100,50 EUR');
  t.equal(statements[1]!.closing!.amountMinor, -11_050n, 'the last line has no CRLF and still counts');
  t.match(lines[0], {
    amountMinor: 58_000n,
    direction: 'credit',
    bankReference: 'FT26069000000001',
    bookingDate: '2026-03-10',
    contentNormalised: 'FG0A1B2C3D4E5F60718293',
    sourceLine: 5,
  });
  t.match(lines[0]!.contentRaw, /NGUYEN VAN A toi/, ':86: continuation lines are joined');
  t.match(lines[1], { direction: 'debit', reversal: true, amountMinor: 92_000n });
  t.match(lines[2], { amountMinor: 1000n, currency: 'EUR', valueDate: '2026-01-01', bookingDate: '2025-12-31' });
});

t.test('MT940 refusals carry the line', async (t) => {
  t.match(await refusal('mt940', fixture('mt940.bad-amount.sta')), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', line: 5 });
  t.match(await refusal('mt940', ':20:X\n:25:1\n:60F:C260310VND0,\n:61:260310C5,NTRF\n'), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', message: /closing/ });
  t.match(await refusal('mt940', ':20:X\n:25:1\n:60F:C260310VND0,5\n:62F:C260310VND0,\n'), { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED', line: 3 });
  t.match(await refusal('mt940', ':25:1\n'), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', line: 1 });
  t.match(await refusal('mt940', ':20:X\n:25:1\n:60F:C260310VND0,\n:61:261310C5,NTRF\n:62F:C260310VND5,\n'), {
    code: 'FEEGATE_ERR_STATEMENT_MALFORMED',
    line: 4,
  });
  t.match(await refusal('mt940', ':20:X\n:25:1\ngarbage\n'), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', line: 3 });
  t.match(await refusal('mt940', ''), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED' });
});

t.test('bank CSV profiles: Vietcombank, BIDV, VietinBank, Agribank', async (t) => {
  const vcb = await collect('csv', fixture('vietcombank.csv'), { profile: 'vietcombank' });
  t.equal(vcb.lines.length, 3, 'the totals and closing rows are not lines');
  t.match(vcb.lines[0], {
    account: '0071000123456',
    amountMinor: 58_000n,
    direction: 'credit',
    bankReference: '5243.65937',
    sourceLine: 7,
    contentNormalised: 'FG0A1B2C3D4E5F60718293',
  });
  t.match(vcb.lines[1], { amountMinor: 11_000n, direction: 'debit' });
  t.equal(vcb.lines[2]!.bookingDate, '2026-03-10', 'a date with a time');
  t.equal(vcb.statements[0]!.opening!.amountMinor, 10_000_000n);
  t.equal(vcb.statements[0]!.closing!.amountMinor, 11_547_000n);
  t.equal(vcb.statements[0]!.opening!.amountMinor + vcb.statements[0]!.creditsMinor - vcb.statements[0]!.debitsMinor, vcb.statements[0]!.closing!.amountMinor);

  const bidv = await collect('csv', fixture('bidv.csv'), { profile: 'bidv' });
  t.equal(bidv.lines.length, 2, 'BOM, ";" delimiter, header on row 5, footer note skipped');
  t.match(bidv.lines[0], { account: '12010000123456', amountMinor: 1_000_000n, direction: 'credit', sourceLine: 6 });
  t.equal(bidv.lines[0]!.contentNormalised, '0123456789 NGUYEN VAN A FG77777777777777777777 CHUYEN TIEN');
  t.match(bidv.lines[1], { amountMinor: 250_000n, direction: 'debit' });

  const vtb = await collect('csv', fixture('vietinbank.csv'), { profile: 'vietinbank', account: '108000123456' });
  t.same(
    vtb.lines.map((l) => [l.direction, l.amountMinor]),
    [
      ['credit', 2_000_000n],
      ['credit', 500_000n],
      ['debit', 5_500n],
    ],
    'one signed column, dd-mm-yyyy',
  );
  t.match(vtb.lines[0], { counterpartyName: 'NGUYEN VAN A', counterpartyAccount: '060129014***', account: '108000123456' });
  t.equal(vtb.lines[1]!.contentNormalised, 'FG99999999999999999999 HOC PHI');
  t.match(await refusal('csv', fixture('vietinbank.csv'), { profile: 'vietinbank' }), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', message: /account/ });

  const agri = await collect('csv', fixture('agribank.csv'), { profile: 'agribank' });
  t.same(
    agri.lines.map((l) => l.amountMinor),
    [50_000n, 1_250_000n],
    'comma thousands, headers without diacritics',
  );
  t.match(agri.lines[1]!.contentRaw, /\(tiep\) lop 6A$/, 'a wrapped description row is joined to its line');
  t.equal(agri.statements[0]!.closing!.amountMinor, 1_300_000n);
});

t.test('bank CSV refusals: missing header column, bad amount on line N, wrong profile, encodings', async (t) => {
  t.match(await refusal('csv', fixture('bidv.missing-column.csv'), { profile: 'bidv' }), {
    code: 'FEEGATE_ERR_STATEMENT_MALFORMED',
    line: 2,
    message: /credit/,
  });
  t.match(await refusal('csv', fixture('vietcombank.bad-amount.csv'), { profile: 'vietcombank' }), {
    code: 'FEEGATE_ERR_STATEMENT_MALFORMED',
    line: 4,
    column: 4,
  });
  t.match(await refusal('csv', fixture('vietinbank.csv'), { profile: 'agribank', account: '1' }), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED', line: 1 });
  t.match(await refusal('csv', 'x', { profile: 'no-such-bank' }), { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED' });
  t.match(await refusal('csv', 'Số tài khoản: 1\nNgày GD,Ghi nợ,Ghi có,Nội dung\n31/02/2026,,1,x\n', { profile: 'vietcombank' }), {
    code: 'FEEGATE_ERR_STATEMENT_MALFORMED',
    line: 3,
    column: 1,
  });
  t.match(await refusal('csv', 'Số tài khoản: 1\nNgày GD,Ghi nợ,Ghi có,Nội dung\n10/03/2026,"1,000","1,000",x\n', { profile: 'vietcombank' }), {
    code: 'FEEGATE_ERR_STATEMENT_MALFORMED',
    line: 3,
    message: /both/,
  });
  t.match(await refusal('csv', 'Số tài khoản: 1\nNgày GD,Ghi nợ,Ghi có,Nội dung\n10/03/2026,,"1,000","unclosed\n', { profile: 'vietcombank' }), {
    code: 'FEEGATE_ERR_STATEMENT_MALFORMED',
  });

  // Windows-1258 writes tones as combining marks after the base letter (â, ơ, ư… are single bytes).
  const cp1258 = (s: string): Buffer =>
    iconv.encode(
      [...s.normalize('NFC')]
        .map((ch) => {
          const d = ch.normalize('NFD');
          return d.replace(/[\u0300\u0301\u0303\u0309\u0323]/g, '').normalize('NFC') + d.replace(/[^\u0300\u0301\u0303\u0309\u0323]/g, '');
        })
        .join(''),
      'windows1258',
    );
  const text = 'Số tài khoản: 0071000123456\nNgày GD,Số CT,Ghi nợ,Ghi có,Nội dung\n10/03/2026,7,,"58,000",Học phí Đạt\n';
  const bytes = cp1258(text);
  t.equal(iconv.decode(bytes, 'windows1258').normalize('NFC'), text, 'the fixture really is Windows-1258');
  t.match(await refusal('csv', bytes, { profile: 'vietcombank' }), { code: 'FEEGATE_ERR_STATEMENT_ENCODING', line: 1 });
  const decoded = await collect('csv', bytes, { profile: 'vietcombank', encoding: 'windows-1258' });
  t.match(decoded.lines[0], { amountMinor: 58_000n, contentRaw: 'Học phí Đạt', contentNormalised: 'HOC PHI DAT', account: '0071000123456' });
  t.match(await refusal('csv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a\u0000b\u0000')]), { profile: 'bidv' }), {
    code: 'FEEGATE_ERR_STATEMENT_ENCODING',
    line: 1,
  });
  t.match(await refusal('csv', Buffer.from('Số tài khoản: 1\n\u0000\u0001binary'), { profile: 'bidv' }), { code: 'FEEGATE_ERR_STATEMENT_ENCODING', line: 2 });
});

t.test('bank XLSX (exceljs streaming reader): header at an offset, date and number cells, text amounts', async (t) => {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet('Sao ke');
  ws.addRow(['NGÂN HÀNG TMCP ĐẦU TƯ VÀ PHÁT TRIỂN VIỆT NAM']);
  ws.addRow(['Số tài khoản:', '12010000123456']);
  ws.addRow(['Số dư đầu kỳ', 0]);
  ws.addRow([]);
  ws.addRow(['STT', 'Ngày giao dịch', 'Số tiền ghi nợ (VND)', 'Số tiền ghi có (VND)', 'Số dư (VND)', 'Mô tả']);
  ws.addRow([1, new Date(Date.UTC(2026, 2, 10)), null, 1_000_000, 1_000_000, 'FG0A1B2C3D4E5F60718293 hoc phi']);
  ws.addRow([2, '10/03/2026 09:00:00', '250.000', '', '750.000', { richText: [{ text: 'Chuyen ' }, { text: 'khoan' }] }]);
  ws.addRow(['Số dư cuối kỳ', 750_000]);
  wb.addWorksheet('Other').addRow(['ignored']);
  const buf = Buffer.from(await wb.xlsx.writeBuffer());
  const { lines, statements } = await collect('xlsx', buf, { profile: 'bidv' });
  t.equal(lines.length, 2);
  t.match(lines[0], { account: '12010000123456', bookingDate: '2026-03-10', amountMinor: 1_000_000n, direction: 'credit', sourceLine: 6, format: 'xlsx' });
  t.match(lines[1], { amountMinor: 250_000n, direction: 'debit', contentRaw: 'Chuyen khoan', sourceLine: 7 });
  t.equal(statements[0]!.closing!.amountMinor, 750_000n);
  t.match(await refusal('xlsx', Buffer.from('this is not a zip file'), { profile: 'bidv' }), { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED', message: /zip/ });
  t.match(
    await refusal('xlsx', Buffer.alloc(0), { profile: 'bidv' }),
    { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED' },
    'an empty file is refused (exceljs alone never settles on it)',
  );
  t.match(
    await refusal('xlsx', Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), { profile: 'bidv' }),
    { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED', message: /\.xls/ },
    'legacy .xls',
  );
  t.match(await refusal('xlsx', buf.subarray(0, Math.floor(buf.length / 2)), { profile: 'bidv' }), { code: /FEEGATE_ERR_STATEMENT_/ });

  const bad = new ExcelJS.Workbook();
  const bs = bad.addWorksheet('s');
  bs.addRow(['Số tài khoản:', '1']);
  bs.addRow(['Ngày giao dịch', 'Số tiền ghi nợ', 'Số tiền ghi có', 'Mô tả']);
  bs.addRow(['10/03/2026', '', '12,5', 'x']);
  t.match(await refusal('xlsx', Buffer.from(await bad.xlsx.writeBuffer()), { profile: 'bidv' }), {
    code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED',
    line: 3,
    column: 3,
  });
});

t.test('amounts are exact bigints in minor units', async (t) => {
  t.equal(parseAmount('123456789012345678901234', 'VND', { decimal: '.', thousands: null }, 1), 123456789012345678901234n, 'beyond 2^53 stays exact');
  t.equal(parseAmount('0.10000', 'USD', { decimal: '.', thousands: null }, 1), 10n);
  t.equal(parseAmount('1.000.000,00', 'VND', { decimal: ',', thousands: '.' }, 1), 1_000_000n);
  t.equal(parseAmount('1,234.567', 'BHD', { decimal: '.', thousands: ',' }, 1), 1_234_567n);
  t.equal(parseAmount('-5.500', 'VND', { decimal: ',', thousands: '.' }, 1), -5_500n);
  t.throws(() => parseAmount('1.00001', 'EUR', { decimal: '.', thousands: null }, 7), { code: 'FEEGATE_ERR_STATEMENT_UNSUPPORTED', line: 7 });
  t.throws(() => parseAmount('1e5', 'VND', { decimal: '.', thousands: null }, 1), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED' });
  t.throws(() => parseAmount('10,00,000', 'VND', { decimal: '.', thousands: ',' }, 1), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED' }, 'misplaced separators');
  t.throws(() => parseAmount('1', 'vnd', { decimal: '.', thousands: null }, 1), { code: 'FEEGATE_ERR_STATEMENT_MALFORMED' });
});

t.test('a stream that errors is reported, not swallowed', async (t) => {
  const broken = new Readable({
    read() {
      this.destroy(new Error('disk gone'));
    },
  });
  await t.rejects(collect('mt940', broken), /disk gone/);
});
