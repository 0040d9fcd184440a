/**
 * Receipt signing throughput on one core, side by side with the physical limit measured in the
 * same run: raw crypto.sign RSA-2048 (SHA-256) with a KeyObject.
 *   raw       crypto.sign over a SignedInfo-sized buffer
 *   build     xmlbuilder2 document only
 *   sign      build + XML-DSig (two references, C14N, KeyInfo) = what a receipt costs in CPU
 *   verify    our verifier (parse, policy, xml-crypto check, chain)
 */
import crypto from 'node:crypto';
import { createCa, issueLeaf, certBase64 } from '../../certs/x509.js';
import type { Signer } from '../../certs/store.js';
import { TEMPLATES, type ReceiptContent } from '../../receipts/templates.js';
import { signDocument, vnLocalTime } from '../../receipts/sign.js';
import { verifyReceiptXml } from '../../receipts/verify.js';

function rate(seconds: number, fn: (i: number) => void): number {
  for (let i = 0; i < 200; i++) fn(i); // warm-up
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const start = performance.now();
  while (performance.now() < end) {
    for (let k = 0; k < 20; k++) fn(n++);
  }
  return n / ((performance.now() - start) / 1000);
}

export function sampleContent(n: number): ReceiptContent {
  return {
    kind: 'original',
    templateSymbol: '01BLP0-001',
    seriesSymbol: 'AA-26E',
    number: n,
    issueDate: '2026-09-15',
    collector: { name: 'Trường THCS Dịch Vọng', taxCode: '0101234567', address: 'Phường Dịch Vọng, Quận Cầu Giấy, Hà Nội', budgetCode: '1234567' },
    payer: { name: 'Nguyễn Văn An', idNumber: '001190012345' },
    lines: [
      { name: 'Học phí học kỳ I năm học 2026-2027', amount: 1_500_000 },
      { name: 'Phí trông giữ xe đạp', amount: 50_000 },
    ],
    total: 1_550_000,
    paymentMethod: 'CK',
    lookupCode: 'ABCDEFGHJKLM',
    extra: [
      { field: 'Kênh thanh toán', value: 'VNPay' },
      { field: 'Mã thanh toán', value: 'FG0123456789' },
      { field: 'Năm học', value: '2026-2027' },
    ],
  };
}

export function benchSigner(): { signer: Signer; anchor: string } {
  const ca = createCa({ commonName: 'Bench CA', organization: 'feegate bench', notBefore: new Date('2020-01-01'), years: 30 });
  const leaf = issueLeaf({
    ca,
    commonName: 'Trường THCS Dịch Vọng',
    taxCode: '0101234567',
    notBefore: new Date('2026-01-01'),
    notAfter: new Date('2029-01-01'),
  });
  return {
    anchor: ca.certPem,
    signer: {
      certId: 'bench',
      certPem: leaf.certPem,
      chainPems: [],
      key: crypto.createPrivateKey(leaf.keyPem),
      subject: 'UID=MST:0101234567, CN=Trường THCS Dịch Vọng, C=VN',
      serial: '1',
      notBefore: new Date('2026-01-01'),
      notAfter: new Date('2029-01-01'),
      keyInfoContent: `<X509Data><X509SubjectName>UID=MST:0101234567, CN=Trường THCS Dịch Vọng, C=VN</X509SubjectName><X509Certificate>${certBase64(leaf.certPem)}</X509Certificate></X509Data>`,
    },
  };
}

export interface SigningBench {
  raw: number;
  build: number;
  sign: number;
  verify: number;
  ratio: number;
}

export function benchSigning(seconds = 5): SigningBench {
  const { signer, anchor } = benchSigner();
  const signedInfo = Buffer.alloc(900, 'x');
  const raw = rate(seconds, () => crypto.sign('sha256', signedInfo, signer.key));
  const build = rate(seconds, (i) => TEMPLATES.fee_receipt.build(sampleContent(i + 1)));
  const time = vnLocalTime(new Date());
  const sign = rate(seconds, (i) => {
    const built = TEMPLATES.fee_receipt.build(sampleContent(i + 1));
    signDocument(built.xml, built, signer, time);
  });
  const built = TEMPLATES.fee_receipt.build(sampleContent(1));
  const xml = signDocument(built.xml, built, signer, time);
  const verify = rate(seconds, () => verifyReceiptXml(xml, [anchor]));
  return { raw, build, sign, verify, ratio: sign / raw };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = benchSigning(Number(process.env.BENCH_SECONDS ?? 5));
  console.log(JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v * 100) / 100]))));
}
