/**
 * Transfer content (nội dung chuyển khoản) as banks deliver it → what the payer typed, plus the bank
 * references the banks wrapped around it (reconciliation.md §3.2). The raw text is always kept next
 * to the normalised one; staff see both.
 *
 * Steps: strip diacritics (NFD, drop marks, đ/Đ → d/D), upper-case, collapse whitespace, then peel
 * the wrappers each bank adds, outermost first, until none applies. Every rule is anchored (a
 * prefix, a suffix or a marker such as /CTR/), so payer text that merely contains the same words is
 * left alone. Rules name the bank they come from; all rules run whatever the receiving bank,
 * because a transfer picks up the sender's wrapper and then the receiver's (VCB → ACB gives
 * `MBVCB.… GD …`).
 */

export interface NormalisedContent {
  raw: string;
  normalised: string;
  /** Bank references found in the wrappers: MBVCB.<n>, FT…, NAPAS trace, ACB GD trace, MAC… */
  references: string[];
}

interface Rule {
  id: string;
  bank: string;
  re: RegExp;
  /** Which capture groups are bank references to keep. */
  refs?: (m: RegExpExecArray) => string[];
}

/** Upper-case, no diacritics, single spaces. */
export function foldText(raw: string): string {
  return raw
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .replace(/đ/g, 'd')
    .replace(/Đ/g, 'D')
    .toUpperCase()
    .replace(/[\s\u00a0]+/g, ' ')
    .trim();
}

// Order matters only among rules of the same end (prefix / suffix); each is tried until none applies.
const RULES: Rule[] = [
  // VCB app: MBVCB.<ref>.<trace6>.<content>.CT tu <acct> <NAME> toi <acct> <NAME> (<bank>) … (VCB→other)
  //          MBVCB.<ref>.<content>.CT tu … toi …                                               (VCB→VCB)
  { id: 'vcb-ct-tu-suffix', bank: 'Vietcombank', re: /[. ]+CT TU \d[\d*X]*\b.*$/ },
  { id: 'vcb-mbvcb-prefix', bank: 'Vietcombank', re: /^MBVCB\.(\d{6,12})\.(?:(\d{6})\.)?/, refs: (m) => [`MBVCB.${m[1]}`] },
  // MB: CUSTOMER MBVCB <ref> <trace> <content>; MB <content>. TU: <NAME>
  { id: 'mb-customer-mbvcb-prefix', bank: 'MB', re: /^CUSTOMER MBVCB (\d{6,12}) (\d{6}) /, refs: (m) => [`MBVCB.${m[1]}`] },
  { id: 'mb-tu-suffix', bank: 'MB', re: /\.? TU: .*$/ },
  { id: 'mb-prefix', bank: 'MB', re: /^MB (?=\S)/ },
  // ACB: <content> GD 856933-090922 18:14:59 ; ACB;<id>;<content>
  { id: 'acb-gd-suffix', bank: 'ACB', re: /[ ;-]*GD \d{6}-\d{6}(?: \d{2}:\d{2}:\d{2})?$/, refs: (m) => [m[0].trim().replace(/^[;-]\s*/, '')] },
  { id: 'acb-prefix', bank: 'ACB', re: /^ACB;(\d+);/, refs: (m) => [`ACB;${m[1]}`] },
  // Sacombank/others via NAPAS: <BANK>-GD <trace>-<iso time>-<bin>-/CTR/IBFT <content>/MAC/<hex>
  { id: 'napas-mac-suffix', bank: 'NAPAS', re: /\/MAC\/([0-9A-F]{8,32})$/, refs: (m) => [`MAC/${m[1]}`] },
  { id: 'napas-ctr-prefix', bank: 'NAPAS', re: /^.*?\/CTR\/(?:IBFT )?/ },
  // MoMo → bank: MoMoT<phone>T<momo txn>T<bin>T<content>
  { id: 'momo-prefix', bank: 'MoMo', re: /^MOMOT(\d{8,12})T(\d{6,14})T(\d{6})T/, refs: (m) => [`MOMO.${m[2]}`] },
  // NAPAS into VCB: [FT… ]<trace6>.<ddmmyy>.<hhmmss>.<content> and <content> FT<14 digits>
  { id: 'ft-prefix', bank: 'NAPAS', re: /^(FT\d{14}) (?=\d{6}\.\d{6}\.\d{6}\.)/, refs: (m) => [m[1]!] },
  { id: 'napas-trace-prefix', bank: 'NAPAS', re: /^(\d{6})\.(\d{6})\.(\d{6})\./, refs: (m) => [`${m[1]}.${m[2]}.${m[3]}`] },
  { id: 'ft-suffix', bank: 'NAPAS', re: / (FT\d{14})$/, refs: (m) => [m[1]!] },
  // Gateways: SHGD:<id>.DD:<yymmdd>.BO:<ORG>.Remark:<content>
  { id: 'shgd-prefix', bank: 'gateway', re: /^SHGD:(\d+)\.DD:\d{6}\.BO:[^.]*\.REMARK:/, refs: (m) => [`SHGD:${m[1]}`] },
  // BIDV: <acct> <NAME> <content>; thoi gian GD:09092024 23:55:31
  { id: 'bidv-time-suffix', bank: 'BIDV', re: /;? ?THOI GIAN GD: ?\d{8} \d{2}:\d{2}:\d{2}$/ },
  // VietinBank: … Noi dung: IBFT <content>  /  CT nhanh 247 den: <NAME> <content> (name cannot be peeled)
  { id: 'vietinbank-noi-dung-prefix', bank: 'VietinBank', re: /^.*?\bNOI DUNG: ?(?:IBFT )?/ },
];

const MAX_PASSES = 12;

export function normaliseContent(raw: string): NormalisedContent {
  let s = foldText(raw.length > 4096 ? raw.slice(0, 4096) : raw);
  const references: string[] = [];
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    let changed = false;
    for (const rule of RULES) {
      const m = rule.re.exec(s);
      if (!m || m[0].length === 0) continue;
      const rest = s.slice(0, m.index) + s.slice(m.index + m[0].length);
      if (rest.trim().length === 0) continue; // never peel away everything: the wrapper was the content
      if (rule.refs) references.push(...rule.refs(m));
      s = rest.trim();
      changed = true;
    }
    if (!changed) break;
  }
  s = s.replace(/^[\s.;:,-]+|[\s.;:,-]+$/g, '').replace(/ +/g, ' ');
  return { raw, normalised: s, references };
}

export interface FoundCode {
  code: string;
  /** exact: appears as written; joined: found after removing spaces/dots the bank inserted;
   *  truncated: the content ends with a prefix of a code (the bank cut it), to be confirmed by amount. */
  how: 'exact' | 'joined' | 'truncated';
}

/** Our payment references: `FG` + 20 upper-case hex digits (gateway/payments newReference). */
export const OUR_CODE = /FG[0-9A-F]{20}/;
const OUR_PREFIX_MIN = 10;

/**
 * Finds payment codes in (normalised or raw) content: ours, or the caller's pattern (a RegExp
 * without separators, matched upper-case). Codes split by spaces, dots or hyphens are found by
 * also searching a copy with every separator removed; a code cut off at the end of the content is
 * reported as `truncated` (only for our own format, whose length is known).
 */
export function findPaymentCodes(content: string, pattern: RegExp = OUR_CODE): FoundCode[] {
  const folded = foldText(content);
  const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '') + 'g');
  const found = new Map<string, FoundCode>();
  for (const m of folded.matchAll(re)) if (m[0]) found.set(m[0], { code: m[0], how: 'exact' });
  const compact = folded.replace(/[^0-9A-Z]/g, '');
  for (const m of compact.matchAll(re)) if (m[0] && !found.has(m[0])) found.set(m[0], { code: m[0], how: 'joined' });
  if (found.size === 0 && pattern === OUR_CODE) {
    const t = new RegExp(`FG[0-9A-F]{${OUR_PREFIX_MIN - 2},19}$`).exec(compact);
    if (t) found.set(t[0], { code: t[0], how: 'truncated' });
  }
  return [...found.values()];
}
