/**
 * Streaming reader of ISO 20022 cash-management entries, shared by camt.053 (BkToCstmrStmt/Stmt)
 * and camt.054 (BkToCstmrDbtCdtNtfctn/Ntfctn): both carry the same Acct/Bal/Ntry shape.
 * saxes events over decoded chunks; only one entry (its TxDtls capped) is held at a time, so memory
 * does not grow with the file. DOCTYPE (and so any entity declaration) is refused.
 *
 * Versions: the namespace urn:iso:std:iso:20022:tech:xsd:camt.05N.001.VV with VV 01–13. The
 * mapper reads both spellings that changed across versions (Sts text vs Sts/Cd, Dbtr/Nm vs
 * Dbtr/Pty/Nm, BookgDt Dt vs DtTm); a file of any of these versions whose structure lacks a
 * required element (Amt, CdtDbtInd, BookgDt) is refused with the line of the entry.
 */
import type { Readable } from 'node:stream';
import { SaxesParser } from 'saxes';
import { parseAmount } from '../amount.js';
import { isoToVnDate } from '../dates.js';
import { normaliseContent } from '../transfer-content.js';
import {
  StatementError,
  StatementTotals,
  malformed,
  type StatementBalance,
  type StatementEvent,
  type StatementInfo,
  type StatementLine,
  type StatementSource,
} from '../statement-line.js';
import { decodeText } from './text-input.js';

export type CamtKind = '053' | '054';
const CONTAINER: Record<CamtKind, { root: string; stmt: string }> = {
  '053': { root: 'BkToCstmrStmt', stmt: 'Stmt' },
  '054': { root: 'BkToCstmrDbtCdtNtfctn', stmt: 'Ntfctn' },
};
const MAX_TEXT = 16_384;
const MAX_RUN = 1 << 20;
const MAX_DEPTH = 40;
const MAX_TXDTLS = 10_000;
const CAMT_NS = /^urn:iso:std:iso:20022:tech:xsd:camt\.(05[2-4])\.001\.(\d{2})$/;

interface Tx {
  amount: string | null;
  ccy: string | null;
  cdtDbt: string | null;
  e2e: string | null;
  ref: string | null;
  dbtrNm: string | null;
  dbtrAcct: string | null;
  cdtrNm: string | null;
  cdtrAcct: string | null;
  ustrd: string[];
  strdRef: string | null;
}
interface Entry {
  line: number;
  amount: string | null;
  ccy: string | null;
  cdtDbt: string | null;
  rvsl: boolean;
  sts: string | null;
  bookg: string | null;
  val: string | null;
  ref: string | null;
  addtl: string | null;
  txs: Tx[];
}
interface Bal {
  tp: string | null;
  amount: string | null;
  ccy: string | null;
  cdtDbt: string | null;
  date: string | null;
  line: number;
}
interface Stmt {
  line: number;
  id: string | null;
  iban: string | null;
  othr: string | null;
  ccy: string | null;
  balances: Bal[];
  totals: StatementTotals;
}

const newTx = (): Tx => ({
  amount: null,
  ccy: null,
  cdtDbt: null,
  e2e: null,
  ref: null,
  dbtrNm: null,
  dbtrAcct: null,
  cdtrNm: null,
  cdtrAcct: null,
  ustrd: [],
  strdRef: null,
});

export interface CamtOptions {
  source?: StatementSource;
}

export async function* parseCamt(input: Readable, kind: CamtKind, options: CamtOptions = {}): AsyncGenerator<StatementEvent> {
  const source = options.source ?? 'bank_statement';
  const format = kind === '053' ? 'camt.053' : 'camt.054';
  const want = CONTAINER[kind];
  const parser = new SaxesParser({ xmlns: true, position: true });
  const out: StatementEvent[] = [];
  const path: string[] = [];
  let version: string | null = null;
  let text = '';
  let textAttrCcy: string | null = null;
  let stmt: Stmt | null = null;
  let entry: Entry | null = null;
  let tx: Tx | null = null;
  let bal: Bal | null = null;
  let stmtIndex = 0;
  let failure: StatementError | null = null;
  const here = (): [number, number] => [parser.line, parser.column];
  const stop = (err: StatementError): void => {
    if (!failure) failure = err;
  };

  parser.on('doctype', () => stop(new StatementError('FEEGATE_ERR_STATEMENT_DTD_FORBIDDEN', 'a DOCTYPE (DTD, entities) is refused', ...here())));
  parser.on('xmldecl', (d) => {
    if (d.encoding && !/^utf-?8$/i.test(d.encoding))
      stop(new StatementError('FEEGATE_ERR_STATEMENT_ENCODING', `the XML declares encoding ${d.encoding.slice(0, 20)}; only UTF-8 is read`, ...here()));
  });
  parser.on('error', (e) => stop(malformed(`not well-formed XML: ${e.message.replace(/^.*?:\d+:\d+: /, '').slice(0, 200)}`, ...here())));
  parser.on('opentag', (node) => {
    if (failure) return;
    const name = node.local ?? node.name;
    if (path.length === 0) {
      const m = CAMT_NS.exec(node.uri ?? '');
      if (name !== 'Document' || !m) {
        stop(
          new StatementError(
            'FEEGATE_ERR_STATEMENT_UNSUPPORTED',
            `not an ISO 20022 camt document (root ${name.slice(0, 40)} in namespace "${(node.uri ?? '').slice(0, 80)}")`,
            ...here(),
          ),
        );
        return;
      }
      if (m[1] !== `05${kind[2]}` || +m[2]! < 1 || +m[2]! > 13) {
        stop(
          new StatementError('FEEGATE_ERR_STATEMENT_UNSUPPORTED', `camt.${m[1]}.001.${m[2]} is not read as camt.${kind} (versions 001.01–001.13)`, ...here()),
        );
        return;
      }
      version = `camt.${m[1]}.001.${m[2]}`;
    }
    path.push(name);
    if (path.length > MAX_DEPTH) {
      stop(new StatementError('FEEGATE_ERR_STATEMENT_TOO_COMPLEX', 'elements nest deeper than any camt document', ...here()));
      return;
    }
    text = '';
    const ccyAttr = node.attributes['Ccy'];
    textAttrCcy = ccyAttr ? (typeof ccyAttr === 'string' ? ccyAttr : ccyAttr.value) : null;
    if (path.length === 2 && name !== want.root) {
      stop(new StatementError('FEEGATE_ERR_STATEMENT_UNSUPPORTED', `the document holds ${name.slice(0, 40)}, not ${want.root}`, ...here()));
      return;
    }
    if (path.length === 3 && name === want.stmt)
      stmt = { line: parser.line, id: null, iban: null, othr: null, ccy: null, balances: [], totals: new StatementTotals() };
    else if (stmt && path.length === 4 && name === 'Bal') bal = { tp: null, amount: null, ccy: null, cdtDbt: null, date: null, line: parser.line };
    else if (stmt && path.length === 4 && name === 'Ntry')
      entry = { line: parser.line, amount: null, ccy: null, cdtDbt: null, rvsl: false, sts: null, bookg: null, val: null, ref: null, addtl: null, txs: [] };
    else if (entry && name === 'TxDtls' && path[path.length - 2] === 'NtryDtls') {
      if (entry.txs.length >= MAX_TXDTLS) {
        stop(new StatementError('FEEGATE_ERR_STATEMENT_TOO_COMPLEX', `an entry holds more than ${MAX_TXDTLS} TxDtls`, ...here()));
        return;
      }
      tx = newTx();
      entry.txs.push(tx);
    }
  });
  parser.on('text', (t) => {
    if (failure) return;
    if (text.length + t.length > MAX_TEXT) {
      stop(new StatementError('FEEGATE_ERR_STATEMENT_TOO_COMPLEX', `an element's text is longer than ${MAX_TEXT} characters`, ...here()));
      return;
    }
    text += t;
  });
  parser.on('cdata', (t) => {
    if (!failure && text.length + t.length <= MAX_TEXT) text += t;
  });
  parser.on('closetag', () => {
    if (failure) return;
    const v = text.trim();
    const rel = (from: number): string => path.slice(from).join('/');
    try {
      if (stmt && path.length >= 4 && !bal && !entry) {
        const r = rel(3);
        if (r === 'Id') stmt.id = v;
        else if (r === 'Acct/Id/IBAN') stmt.iban = v;
        else if (r === 'Acct/Id/Othr/Id') stmt.othr = v;
        else if (r === 'Acct/Ccy') stmt.ccy = v;
      } else if (bal) {
        const r = rel(4);
        if (r === 'Tp/CdOrPrtry/Cd' || r === 'Tp/CdOrPrtry/Prtry') bal.tp = v;
        else if (r === 'Amt') {
          bal.amount = v;
          bal.ccy = textAttrCcy;
        } else if (r === 'CdtDbtInd') bal.cdtDbt = v;
        else if (r === 'Dt/Dt' || r === 'Dt/DtTm') bal.date = isoToVnDate(v, parser.line);
        else if (r === '') {
          stmt!.balances.push(bal);
          bal = null;
        }
      } else if (entry) {
        const r = rel(4);
        if (tx) {
          const tr = r.replace(/^NtryDtls\/TxDtls\/?/, '');
          if (tr === 'Amt' || (tr === 'AmtDtls/TxAmt/Amt' && tx.amount === null)) {
            tx.amount = v;
            tx.ccy = textAttrCcy;
          } else if (tr === 'CdtDbtInd') tx.cdtDbt = v;
          else if (tr === 'Refs/EndToEndId') tx.e2e = v;
          else if (tr === 'Refs/AcctSvcrRef') tx.ref = v;
          else if (tr === 'RltdPties/Dbtr/Nm' || tr === 'RltdPties/Dbtr/Pty/Nm') tx.dbtrNm = v;
          else if (tr === 'RltdPties/Cdtr/Nm' || tr === 'RltdPties/Cdtr/Pty/Nm') tx.cdtrNm = v;
          else if (tr === 'RltdPties/DbtrAcct/Id/IBAN' || tr === 'RltdPties/DbtrAcct/Id/Othr/Id') tx.dbtrAcct = v;
          else if (tr === 'RltdPties/CdtrAcct/Id/IBAN' || tr === 'RltdPties/CdtrAcct/Id/Othr/Id') tx.cdtrAcct = v;
          else if (tr === 'RmtInf/Ustrd') {
            if (tx.ustrd.length < 16) tx.ustrd.push(v);
          } else if (tr === 'RmtInf/Strd/CdtrRefInf/Ref') tx.strdRef = v;
          else if (tr === '') tx = null;
        } else if (r === 'Amt') {
          entry.amount = v;
          entry.ccy = textAttrCcy;
        } else if (r === 'CdtDbtInd') entry.cdtDbt = v;
        else if (r === 'RvslInd') entry.rvsl = v === 'true' || v === '1';
        else if (r === 'Sts' || r === 'Sts/Cd' || r === 'Sts/Prtry') entry.sts = v;
        else if (r === 'BookgDt/Dt' || r === 'BookgDt/DtTm') entry.bookg = isoToVnDate(v, parser.line);
        else if (r === 'ValDt/Dt' || r === 'ValDt/DtTm') entry.val = isoToVnDate(v, parser.line);
        else if (r === 'AcctSvcrRef') entry.ref = v;
        else if (r === 'AddtlNtryInf') entry.addtl = v;
        else if (r === '') {
          emitEntry(entry);
          entry = null;
        }
      }
      if (stmt && path.length === 3) {
        emitStatement(stmt);
        stmt = null;
      }
    } catch (e) {
      if (e instanceof StatementError) stop(e);
      else throw e;
    }
    path.pop();
    text = '';
  });

  const account = (s: Stmt): string => {
    const a = s.iban ?? s.othr;
    if (!a) throw malformed(`${want.stmt} has no Acct/Id (IBAN or Othr/Id)`, s.line);
    return a;
  };
  const direction = (ind: string | null, line: number): 'credit' | 'debit' => {
    if (ind === 'CRDT') return 'credit';
    if (ind === 'DBIT') return 'debit';
    throw malformed(`CdtDbtInd "${(ind ?? '').slice(0, 10)}" is not CRDT or DBIT`, line);
  };
  function emitEntry(e: Entry): void {
    const s = stmt!;
    if (e.amount === null || e.ccy === null) throw malformed('Ntry has no Amt with a Ccy', e.line);
    if (!e.bookg) throw malformed('Ntry has no BookgDt', e.line);
    const entryDir = direction(e.cdtDbt, e.line);
    const total = parseAmount(e.amount, e.ccy, { decimal: '.', thousands: null }, e.line);
    if (total < 0n) throw malformed('Ntry Amt is negative (the sign is CdtDbtInd)', e.line);
    const acct = account(s);
    const sid = s.id ?? `${acct}#${stmtIndex + 1}`;
    const provisional = e.sts === 'PDNG' || source === 'bank_feed';
    const txs: (Tx | null)[] = e.txs.length === 0 ? [null] : e.txs;
    // A batch whose TxDtls carry no own amounts cannot be split honestly: it stays one line.
    const splittable = txs.length === 1 || txs.every((t) => t !== null && t.amount !== null && t.ccy === e.ccy);
    const parts = splittable ? txs : [null];
    if (splittable && parts.length > 1) {
      let sum = 0n;
      for (const t of parts) sum += parseAmount(t!.amount!, t!.ccy!, { decimal: '.', thousands: null }, e.line);
      if (sum !== total) throw malformed(`the batch's TxDtls add up to ${sum} minor units, the Ntry says ${total}`, e.line);
    }
    parts.forEach((t, i) => {
      const amount = t && parts.length > 1 ? parseAmount(t.amount!, t.ccy!, { decimal: '.', thousands: null }, e.line) : total;
      const dir = t?.cdtDbt ? direction(t.cdtDbt, e.line) : entryDir;
      const all = splittable ? parts : e.txs;
      const content =
        (splittable ? (t ? [...t.ustrd, t.strdRef ?? ''] : []) : all.flatMap((x) => (x ? [...x.ustrd] : []))).filter(Boolean).join(' ') || (e.addtl ?? '');
      const line: StatementLine = {
        source,
        format,
        account: acct,
        statementId: sid,
        bookingDate: e.bookg!,
        valueDate: e.val,
        amountMinor: amount < 0n ? -amount : amount,
        currency: e.ccy!,
        direction: dir,
        reversal: e.rvsl,
        bankReference: t?.ref ?? e.ref,
        batchIndex: parts.length > 1 ? i : null,
        endToEndId: t?.e2e && t.e2e !== 'NOTPROVIDED' ? t.e2e : null,
        counterpartyName: (dir === 'credit' ? t?.dbtrNm : t?.cdtrNm) ?? null,
        counterpartyAccount: (dir === 'credit' ? t?.dbtrAcct : t?.cdtrAcct) ?? null,
        contentRaw: content,
        contentNormalised: normaliseContent(content).normalised,
        sourceLine: e.line,
        provisional,
      };
      s.totals.add(line);
      out.push({ kind: 'line', line });
    });
  }
  function balance(b: Bal): StatementBalance {
    if (b.amount === null || b.ccy === null) throw malformed('Bal has no Amt with a Ccy', b.line);
    const v = parseAmount(b.amount, b.ccy, { decimal: '.', thousands: null }, b.line);
    const sign = b.cdtDbt === 'DBIT' ? -1n : 1n;
    return { amountMinor: v * sign, currency: b.ccy, date: b.date };
  }
  function emitStatement(s: Stmt): void {
    stmtIndex++;
    const acct = account(s);
    const open = s.balances.find((b) => b.tp === 'OPBD') ?? s.balances.find((b) => b.tp === 'PRCD');
    const close = s.balances.find((b) => b.tp === 'CLBD');
    const info: StatementInfo = {
      source,
      format,
      formatVersion: version!,
      statementId: s.id ?? `${acct}#${stmtIndex}`,
      account: acct,
      currency: s.ccy,
      opening: open ? balance(open) : null,
      closing: close ? balance(close) : null,
      intermediate: false,
      lineCount: s.totals.lineCount,
      creditsMinor: s.totals.creditsMinor,
      debitsMinor: s.totals.debitsMinor,
      sourceLine: s.line,
    };
    out.push({ kind: 'statement', statement: info });
  }

  // saxes buffers a text node or an open tag whole until its end: a run of characters with no '<'
  // or '>' longer than MAX_RUN is refused before it can grow (our MAX_TEXT check only runs once
  // saxes hands the text over).
  let run = 0;
  for await (const chunk of decodeText(input)) {
    const last = Math.max(chunk.lastIndexOf('<'), chunk.lastIndexOf('>'));
    if (last < 0) run += chunk.length;
    else {
      const lt = chunk.indexOf('<');
      const gt = chunk.indexOf('>');
      const first = lt < 0 ? gt : gt < 0 ? lt : Math.min(lt, gt);
      if (run + first > MAX_RUN) run += first;
      else run = chunk.length - 1 - last;
    }
    if (run > MAX_RUN)
      throw new StatementError('FEEGATE_ERR_STATEMENT_TOO_COMPLEX', `more than ${MAX_RUN} characters without markup (a huge text or tag)`, parser.line);
    try {
      parser.write(chunk);
    } catch (e) {
      stop(malformed(`not well-formed XML: ${(e as Error).message.replace(/^.*?:\d+:\d+: /, '').slice(0, 200)}`, ...here()));
    }
    if (failure) throw failure;
    for (const ev of out.splice(0)) yield ev;
  }
  try {
    parser.close();
  } catch (e) {
    stop(malformed(`not well-formed XML: ${(e as Error).message.replace(/^.*?:\d+:\d+: /, '').slice(0, 200)}`, ...here()));
  }
  if (failure) throw failure;
  if (version === null) throw malformed('the file is empty', 1);
  for (const ev of out.splice(0)) yield ev;
}
