/**
 * SWIFT MT940 (customer statement), streaming line by line. Tags read: :20: reference, :25:
 * account, :28C: statement/sequence number, :60F:/:60M: opening, :61: entry, :86: information
 * (after a :61: it belongs to that entry, otherwise to the statement), :62F:/:62M: closing;
 * :64:/:65: and unknown tags are skipped. SWIFT block wrappers ({1:…}{2:…}{4: … -}) are accepted.
 * Several statements per file (each :20: starts one); a missing final CRLF is fine.
 *
 * :61: = 6!n[4!n]2a[1!a]15d1!a3!c[16x][//16x] then an optional second line of 34x details:
 * value date YYMMDD, entry date MMDD, C|D|RC|RD (RC = reversal of a credit, booked as a debit;
 * RD = reversal of a debit, a credit), funds code, amount with a comma decimal, type, refs.
 */
import type { Readable } from 'node:stream';
import { parseAmount } from '../amount.js';
import { validYmd, ymd } from '../dates.js';
import { normaliseContent } from '../transfer-content.js';
import { StatementTotals, malformed, type StatementBalance, type StatementEvent, type StatementLine, type StatementSource } from '../statement-line.js';
import { decodeText, textLines } from './text-input.js';

const LINE_61 = /^(\d{6})(\d{4})?(RC|RD|EC|ED|C|D)([A-Z])?(\d{1,15},\d{0,5})([A-Z][A-Z0-9]{3})(.*)$/;
const BALANCE = /^([CD])(\d{6})([A-Z]{3})(\d{1,15},\d{0,5})$/;
const MAX_INFO = 16_384;

interface Stmt {
  line: number;
  ref: string;
  account: string | null;
  seq: string | null;
  currency: string | null;
  opening: StatementBalance | null;
  closing: StatementBalance | null;
  intermediate: boolean;
  totals: StatementTotals;
  info: string;
}
interface Pending {
  line: StatementLine;
  info: string[];
  details: string | null;
}

function yymmdd(s: string, line: number): { y: number; m: number; d: number } {
  const yy = +s.slice(0, 2);
  const y = yy >= 80 ? 1900 + yy : 2000 + yy;
  const m = +s.slice(2, 4);
  const d = +s.slice(4, 6);
  if (!validYmd(y, m, d)) throw malformed(`"${s}" is not a date YYMMDD`, line);
  return { y, m, d };
}

export interface Mt940Options {
  source?: StatementSource;
}

export async function* parseMt940(input: Readable, options: Mt940Options = {}): AsyncGenerator<StatementEvent> {
  const source = options.source ?? 'bank_statement';
  let stmt: Stmt | null = null;
  let pending: Pending | null = null;
  let tag: string | null = null; // the field continuation lines belong to
  let seen = false;

  const flushLine = function* (): Generator<StatementEvent> {
    if (!pending) return;
    const p = pending;
    pending = null;
    const raw = p.info.join('') || p.details || '';
    p.line.contentRaw = raw;
    p.line.contentNormalised = normaliseContent(raw).normalised;
    stmt!.totals.add(p.line);
    yield { kind: 'line', line: p.line };
  };
  const flushStatement = function* (endLine: number): Generator<StatementEvent> {
    yield* flushLine();
    if (!stmt) return;
    const s = stmt;
    stmt = null;
    if (!s.account) throw malformed('the statement has no :25: account', s.line);
    if (!s.opening) throw malformed('the statement has no :60F:/:60M: opening balance', s.line);
    if (!s.closing) throw malformed('the statement has no :62F:/:62M: closing balance', endLine);
    yield {
      kind: 'statement',
      statement: {
        source,
        format: 'mt940',
        formatVersion: 'mt940',
        statementId: s.seq ? `${s.ref}/${s.seq}` : s.ref,
        account: s.account,
        currency: s.currency,
        opening: s.opening,
        closing: s.closing,
        intermediate: s.intermediate,
        lineCount: s.totals.lineCount,
        creditsMinor: s.totals.creditsMinor,
        debitsMinor: s.totals.debitsMinor,
        sourceLine: s.line,
      },
    };
  };
  const balance = (v: string, no: number): StatementBalance => {
    const m = BALANCE.exec(v.trim());
    if (!m) throw malformed(`balance "${v.slice(0, 40)}" is not [C|D]YYMMDDCCYamount`, no);
    const { y, m: mo, d } = yymmdd(m[2]!, no);
    const amount = parseAmount(m[4]!, m[3]!, { decimal: ',', thousands: null }, no);
    if (stmt!.currency && stmt!.currency !== m[3]) throw malformed(`balance currency ${m[3]} differs from the statement's ${stmt!.currency}`, no);
    stmt!.currency = m[3]!;
    return { amountMinor: m[1] === 'D' ? -amount : amount, currency: m[3]!, date: ymd(y, mo, d) };
  };

  for await (const { text, no } of textLines(decodeText(input), 4096)) {
    let l = text.replace(/\s+$/, '');
    if (l.startsWith('{')) {
      // SWIFT header blocks; the text block {4: may share the line
      const i = l.indexOf('{4:');
      if (i < 0) continue;
      l = l.slice(i + 3);
      if (!l) continue;
    }
    if (l === '-}' || l === '-' || l.startsWith('-}')) {
      yield* flushStatement(no);
      tag = null;
      continue;
    }
    if (l === '') continue;
    const m = /^:(\d{2}[A-Z]?):(.*)$/.exec(l);
    if (!m) {
      if (tag === '86') {
        const info = pending ? pending.info : null;
        if (info) {
          if (info.join('').length + l.length <= MAX_INFO) info.push(l);
        } else if (stmt && stmt.info.length + l.length <= MAX_INFO) stmt.info += l;
        continue;
      }
      if (tag === '61' && pending && pending.details === null) {
        pending.details = l.trim();
        continue;
      }
      throw malformed(`"${l.slice(0, 40)}" is neither a :tag: nor a continuation of :86:`, no, 1);
    }
    const [, t, v] = m as unknown as [string, string, string];
    seen = true;
    if (t !== '86' && t !== '61') yield* flushLine();
    tag = t;
    if (t === '20') {
      yield* flushStatement(no);
      stmt = {
        line: no,
        ref: v.trim(),
        account: null,
        seq: null,
        currency: null,
        opening: null,
        closing: null,
        intermediate: false,
        totals: new StatementTotals(),
        info: '',
      };
      continue;
    }
    if (!stmt) throw malformed(`:${t}: before any :20: statement reference`, no, 1);
    switch (t) {
      case '25':
        stmt.account = v.trim();
        break;
      case '28C':
      case '28':
        stmt.seq = v.trim();
        break;
      case '60F':
      case '60M':
        stmt.opening = balance(v, no);
        if (t === '60M') stmt.intermediate = true;
        break;
      case '62F':
      case '62M':
        if (!stmt.opening) throw malformed(`:${t}: before an opening balance`, no, 1);
        stmt.closing = balance(v, no);
        if (t === '62M') stmt.intermediate = true;
        break;
      case '61': {
        yield* flushLine();
        if (!stmt.account || !stmt.opening) throw malformed(':61: before :25: and :60F:', no, 1);
        const e = LINE_61.exec(v);
        if (!e) throw malformed(`:61: "${v.slice(0, 60)}" does not read as date, D/C mark, amount and type`, no, 5);
        const val = yymmdd(e[1]!, no);
        let booking = ymd(val.y, val.m, val.d);
        if (e[2]) {
          const bm = +e[2].slice(0, 2);
          const bd = +e[2].slice(2, 4);
          // The entry date has no year: take the value date's, moved across a year end.
          let by = val.y;
          if (bm === 12 && val.m === 1) by--;
          else if (bm === 1 && val.m === 12) by++;
          if (!validYmd(by, bm, bd)) throw malformed(`entry date "${e[2]}" is not MMDD`, no, 11);
          booking = ymd(by, bm, bd);
        }
        const mark = e[3]!;
        const amount = parseAmount(e[5]!, stmt.currency!, { decimal: ',', thousands: null }, no);
        const refs = e[7]!;
        const sep = refs.indexOf('//');
        const customerRef = (sep >= 0 ? refs.slice(0, sep) : refs).trim();
        const bankRef = sep >= 0 ? refs.slice(sep + 2).trim() : '';
        pending = {
          info: [],
          details: null,
          line: {
            source,
            format: 'mt940',
            account: stmt.account,
            statementId: stmt.seq ? `${stmt.ref}/${stmt.seq}` : stmt.ref,
            bookingDate: booking,
            valueDate: ymd(val.y, val.m, val.d),
            amountMinor: amount,
            currency: stmt.currency!,
            direction: mark === 'C' || mark === 'RD' || mark === 'EC' ? 'credit' : 'debit',
            reversal: mark === 'RC' || mark === 'RD',
            bankReference: bankRef || (customerRef && customerRef !== 'NONREF' ? customerRef : null),
            batchIndex: null,
            endToEndId: customerRef && customerRef !== 'NONREF' ? customerRef : null,
            counterpartyName: null,
            counterpartyAccount: null,
            contentRaw: '',
            contentNormalised: '',
            sourceLine: no,
            provisional: source === 'bank_feed',
          },
        };
        break;
      }
      case '86':
        if (pending) pending.info.push(v);
        else stmt.info += v;
        break;
      default:
        break; // :64:, :65:, :21:, :13D:, :34F:, … carry nothing we reconcile on
    }
  }
  if (stmt) yield* flushStatement(stmt.line);
  if (!seen) throw malformed('the file holds no MT940 field', 1);
}
