/**
 * The public lookup page: a receipt as a person reads it (Vietnamese labels, amounts with
 * thousands separators, the QR code of its lookup link, the verification result) and a link to
 * download the signed XML. Everything shown comes from the verifier's reading of the signed bytes.
 */
import QRCode from 'qrcode';
import type { VerificationReport } from './verify.js';
import type { ReceiptRow } from './issue.js';

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const money = (v: string | number) => (/^\d+$/.test(String(v)) ? `${BigInt(v).toLocaleString('vi-VN')} đ` : esc(v));
const vnDateLabel = (iso: string) => (/^\d{4}-\d{2}-\d{2}$/.test(iso) ? `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}` : esc(iso));

export async function lookupPage(r: ReceiptRow, report: VerificationReport, lookupUrl: string): Promise<string> {
  const d = report.document ?? {};
  const lines = JSON.parse(d.lines ?? '[]') as { name: string; amount: string }[];
  const qr = await QRCode.toString(lookupUrl, { type: 'svg', margin: 1, width: 140, errorCorrectionLevel: 'M' });
  const ok = report.valid;
  const status = ok
    ? `<p class="ok">✔ Chữ ký số hợp lệ. Biên lai chưa bị sửa đổi kể từ khi ký.</p>`
    : `<p class="bad">✘ Chữ ký số KHÔNG hợp lệ: ${report.problems.map((p) => esc(`${p.rule}: ${p.message}`)).join('<br>')}</p>`;
  const title = r.kind === 'adjustment' ? 'BIÊN LAI THU PHÍ, LỆ PHÍ (ĐIỀU CHỈNH)' : 'BIÊN LAI THU PHÍ, LỆ PHÍ';
  return `<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Biên lai ${esc(d.series_symbol)} số ${esc(d.number)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem;text-align:center}table{width:100%;border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.4rem;text-align:left}
td.amount,th.amount{text-align:right}.ok{color:#17612b;font-weight:600}.bad{color:#a11;font-weight:600}.meta{display:flex;justify-content:space-between;gap:1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#555}</style></head>
<body>
<h1>${title}</h1>
<div class="meta"><dl>
<dt>Mẫu số</dt><dd>${esc(d.template_symbol)}</dd><dt>Ký hiệu</dt><dd>${esc(d.series_symbol)}</dd>
<dt>Số</dt><dd>${esc(d.number)}</dd><dt>Ngày lập</dt><dd>${vnDateLabel(d.issue_date ?? '')}</dd><dt>Mã tra cứu</dt><dd>${esc(r.lookup_code)}</dd>
</dl><div>${qr}</div></div>
<dl><dt>Đơn vị thu</dt><dd>${esc(d.collector_name)}</dd><dt>Mã số thuế</dt><dd>${esc(d.collector_tax_code)}</dd><dt>Người nộp</dt><dd>${esc(d.payer_name)}</dd></dl>
<table><thead><tr><th>STT</th><th>Nội dung thu</th><th class="amount">Số tiền</th></tr></thead><tbody>
${lines.map((l, i) => `<tr><td>${i + 1}</td><td>${esc(l.name)}</td><td class="amount">${money(l.amount)}</td></tr>`).join('\n')}
<tr><th colspan="2">Tổng cộng</th><th class="amount">${money(d.total ?? '')}</th></tr></tbody></table>
<p>Bằng chữ: <em>${esc(d.total_words)}</em></p>
${status}
<dl><dt>Ký bởi</dt><dd>${esc(report.signer?.subject)}</dd><dt>Tổ chức cấp chứng thư</dt><dd>${esc(report.signer?.issuer)}</dd>
<dt>Thời điểm ký</dt><dd>${esc(report.signing_time)}</dd></dl>
<p><a href="${esc(lookupUrl)}/xml" download>Tải biên lai điện tử (XML có chữ ký số)</a></p>
</body></html>`;
}
