import t from 'tap';
import { findPaymentCodes, foldText, normaliseContent } from '../gateway/reconciliation/transfer-content.js';

const CODE = 'FG7A2B9C0D1E2F3A4B5C6D'; // FG + 20 hex: our payment reference format

// The shapes of reconciliation.md §3.2 (names/accounts are placeholders), our code inside.
const CASES: { origin: string; raw: string; normalised: string; references?: string[] }[] = [
  {
    origin: 'VCB app → other bank',
    raw: `MBVCB.2427229823.174242.${CODE}.CT tu 0123456789 NGUYEN VAN A toi 2834567890 NGUYEN VAN B (ACB) A Chau GD 174242-090822 15:45:46`,
    normalised: CODE,
    references: ['MBVCB.2427229823'],
  },
  {
    origin: 'VCB → VCB',
    raw: `MBVCB.6998628625.${CODE} hoc phi.CT tu 0071000111222 NGUYEN VAN A toi 0011000333444 TRUONG C`,
    normalised: `${CODE} HOC PHI`,
    references: ['MBVCB.6998628625'],
  },
  { origin: 'NAPAS into VCB', raw: `884114.100924.223854.${CODE}`, normalised: CODE, references: ['884114.100924.223854'] },
  {
    origin: 'NAPAS into VCB with FT prefix',
    raw: `FT24255999347270 807439.100924.223851.${CODE} dong hoc phi`,
    normalised: `${CODE} DONG HOC PHI`,
    references: ['FT24255999347270', '807439.100924.223851'],
  },
  { origin: 'content then FT suffix', raw: `${CODE} FT24255276428461`, normalised: CODE, references: ['FT24255276428461'] },
  { origin: 'into ACB', raw: `${CODE} GD 856933-090922 18:14:59`, normalised: CODE, references: ['GD 856933-090922 18:14:59'] },
  { origin: 'into ACB with ACB; prefix', raw: `ACB;28349817;${CODE} GD 856933-090922 18:14:59`, normalised: CODE },
  {
    origin: 'Sacombank via NAPAS into ACB',
    raw: `SACOMBANK-GD 459096-2022-11-06T11:41:21-970403-/CTR/IBFT ${CODE}/MAC/1526BCF94B9A4C13`,
    normalised: CODE,
    references: ['MAC/1526BCF94B9A4C13'],
  },
  {
    origin: 'MoMo → bank',
    raw: `MoMoT0912345678T28994691053T970416T${CODE} GD 856933-090922 18:14:59`,
    normalised: CODE,
    references: ['MOMO.28994691053', 'GD 856933-090922 18:14:59'],
  },
  { origin: 'MB', raw: `MB ${CODE}. TU: NGUYEN VAN A`, normalised: CODE },
  {
    origin: 'MB → VCB customer',
    raw: `CUSTOMER MBVCB 2420648919 339176 ${CODE}  CT tu 0123456 NGUYEN VAN A to i 0071 B`,
    normalised: CODE,
    references: ['MBVCB.2420648919'],
  },
  { origin: 'gateway SHGD', raw: `SHGD:10004067.DD:240910.BO:TRUONG ABC.Remark:${CODE}`, normalised: CODE, references: ['SHGD:10004067'] },
  {
    origin: 'BIDV time suffix',
    raw: `0123456789 NGUYEN VAN A ${CODE} Chuyen tien; thoi gian GD:09092024 23:55:31`,
    normalised: `0123456789 NGUYEN VAN A ${CODE} CHUYEN TIEN`,
  },
  { origin: 'VietinBank via NAPAS', raw: `Chuyen tien den tu NAPAS Noi dung: IBFT ${CODE} hoc phi`, normalised: `${CODE} HOC PHI` },
  { origin: 'lower case, diacritics, đ', raw: `  Đóng học phí   ${CODE.toLowerCase()}  lớp 6A đợt 2 `, normalised: `DONG HOC PHI ${CODE} LOP 6A DOT 2` },
  { origin: 'payer text that only looks like a wrapper is left alone', raw: 'TRA TIEN GD 12 CHO BAN', normalised: 'TRA TIEN GD 12 CHO BAN' },
  { origin: 'a content that is only a wrapper is kept, not emptied', raw: 'MBVCB.2427229823.174242.', normalised: 'MBVCB.2427229823.174242' },
];

t.test('normaliseContent peels what each bank adds (table from reconciliation.md §3.2)', async (t) => {
  for (const c of CASES) {
    const n = normaliseContent(c.raw);
    t.equal(n.normalised, c.normalised, c.origin);
    t.equal(n.raw, c.raw, `${c.origin}: raw kept`);
    if (c.references) t.same(n.references.slice().sort(), c.references.slice().sort(), `${c.origin}: references`);
  }
});

t.test('foldText: Vietnamese diacritics, đ/Đ, case, spaces, NFC and NFD input alike', async (t) => {
  t.equal(foldText('Nguyễn Đức Thắng đóng tiền'), 'NGUYEN DUC THANG DONG TIEN');
  t.equal(foldText('Học phí'.normalize('NFD')), foldText('Học phí'.normalize('NFC')));
  t.equal(foldText('a\u00a0\t\n b'), 'A B');
});

t.test('findPaymentCodes: ours exact, broken by spaces/dots, lower-cased, truncated; caller patterns', async (t) => {
  t.same(findPaymentCodes(`DONG HOC PHI ${CODE}`), [{ code: CODE, how: 'exact' }]);
  t.same(findPaymentCodes(CODE.toLowerCase()), [{ code: CODE, how: 'exact' }], 'lower-cased by the bank');
  const broken = `${CODE.slice(0, 7)} ${CODE.slice(7, 15)}.${CODE.slice(15)} hoc phi`;
  t.same(findPaymentCodes(broken), [{ code: CODE, how: 'joined' }], 'split by spaces and dots');
  t.same(findPaymentCodes(normaliseContent(`MBVCB.2427229823.174242.${CODE.slice(0, 10)} ${CODE.slice(10)}.CT tu 1 A toi 2 B`).normalised), [
    { code: CODE, how: 'joined' },
  ]);
  t.same(findPaymentCodes(`hoc phi ${CODE.slice(0, 16)}`), [{ code: CODE.slice(0, 16), how: 'truncated' }], 'cut at the end of the purpose field');
  t.same(findPaymentCodes('hoc phi FG12'), [], 'too short a fragment is no code');
  t.same(findPaymentCodes('no code here'), []);
  const two = findPaymentCodes(`${CODE} va FG00000000000000000000`)
    .map((f) => f.code)
    .sort();
  t.same(two, ['FG00000000000000000000', CODE].sort(), 'several codes');
  t.same(findPaymentCodes('ma hs: hs-2026 00123 lop 6', /HS2026\d{5}/), [{ code: 'HS202600123', how: 'joined' }], "a caller's pattern");
  t.same(findPaymentCodes('HS202600123', /HS2026\d{5}/g), [{ code: 'HS202600123', how: 'exact' }], 'a global pattern is accepted');
});
