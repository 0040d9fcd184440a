/**
 * Rows (from CSV or XLSX) → statement lines through a bank profile. Shared by csv.ts and xlsx.ts;
 * holds one row back (a description wrapped onto the next row by PDF-derived exports is joined to
 * its line) and nothing else, so memory does not grow with the file.
 */
import { parseAmount, type DecimalStyle } from '../amount.js';
import { dayFirstToDate, isoToVnDate, ymd } from '../dates.js';
import { foldText, normaliseContent } from '../transfer-content.js';
import {
  StatementError,
  StatementTotals,
  malformed,
  type StatementBalance,
  type StatementEvent,
  type StatementFormat,
  type StatementLine,
  type StatementSource,
} from '../statement-line.js';
import type { BankProfile, ColumnRole } from './bank-profiles.js';

export type Cell = string | number | Date | boolean | null | undefined;

export interface TabularOptions {
  source?: StatementSource;
  /** The account the export is for, when the file does not say it above the header. */
  account?: string;
  statementId?: string;
}

const fold = (c: Cell): string =>
  typeof c === 'string'
    ? foldText(c)
        .toLowerCase()
        .replace(/[():*]/g, ' ')
        .replace(/ +/g, ' ')
        .trim()
    : '';
const words = (kw: string): RegExp => new RegExp(`(^| )${kw.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`);
const ASSIGN_ORDER: ColumnRole[] = [
  'valueDate',
  'debit',
  'credit',
  'reference',
  'counterpartyName',
  'counterpartyAccount',
  'balance',
  'amount',
  'bookingDate',
  'content',
];

export class TabularReader {
  private header: Map<ColumnRole, number> | null = null;
  private bestPartial: { line: number; missing: ColumnRole[] } | null = null;
  private account: string | null;
  private opening: StatementBalance | null = null;
  private closing: StatementBalance | null = null;
  private held: StatementLine | null = null;
  private totals = new StatementTotals();
  private headerLine = 0;
  private readonly style: DecimalStyle;
  private readonly required: ColumnRole[];

  constructor(
    private readonly profile: BankProfile,
    private readonly format: StatementFormat,
    private readonly options: TabularOptions = {},
  ) {
    this.account = options.account ?? null;
    this.style = { decimal: profile.decimal, thousands: profile.thousands };
    this.required = ['bookingDate', 'content', ...(profile.sign === 'split' ? (['debit', 'credit'] as const) : (['amount'] as const))];
  }

  row(cells: Cell[], line: number): StatementEvent[] {
    if (cells.length > 200) throw new StatementError('FEEGATE_ERR_STATEMENT_TOO_COMPLEX', 'a row has more than 200 cells', line);
    if (cells.every((c) => c === null || c === undefined || (typeof c === 'string' && c.trim() === ''))) return [];
    if (!this.header) {
      this.findHeader(cells, line);
      return [];
    }
    return this.dataRow(cells, line);
  }

  end(lastLine: number): StatementEvent[] {
    if (!this.header) {
      if (this.bestPartial)
        throw malformed(
          `the header row lacks the column(s) ${this.bestPartial.missing.join(', ')} (keywords: ${this.bestPartial.missing.map((r) => this.profile.columns[r]?.[0]).join(', ')})`,
          this.bestPartial.line,
        );
      throw malformed(
        `no header row with the ${this.profile.bank} columns (${this.required.join(', ')}) in the first ${this.profile.headerSearchRows} rows`,
        Math.min(lastLine, this.profile.headerSearchRows) || 1,
      );
    }
    const out = this.release();
    out.push({
      kind: 'statement',
      statement: {
        source: this.options.source ?? 'bank_statement',
        format: this.format,
        formatVersion: this.profile.id,
        statementId: this.statementId(),
        account: this.account!,
        currency: this.profile.currency,
        opening: this.opening,
        closing: this.closing,
        intermediate: false,
        lineCount: this.totals.lineCount,
        creditsMinor: this.totals.creditsMinor,
        debitsMinor: this.totals.debitsMinor,
        sourceLine: this.headerLine,
      },
    });
    return out;
  }

  private statementId(): string {
    return this.options.statementId ?? `${this.profile.id}:${this.account}`;
  }

  private meta(cells: Cell[], line: number): boolean {
    for (let i = 0; i < cells.length; i++) {
      const f = fold(cells[i]);
      if (!f) continue;
      for (const [key, kws] of Object.entries(this.profile.meta) as [keyof BankProfile['meta'], string[]][]) {
        if (!kws.some((k) => f.startsWith(k))) continue;
        const raw = cells[i];
        const inCell = typeof raw === 'string' && raw.includes(':') ? raw.slice(raw.indexOf(':') + 1).trim() : '';
        const next = inCell || cells.slice(i + 1).find((c) => c !== null && c !== undefined && String(c).trim() !== '');
        if (next === undefined || next === '') return true;
        if (key === 'account') {
          if (!this.account) this.account = String(next).replace(/[^0-9A-Za-z]/g, '') || null;
        } else {
          const v =
            typeof next === 'number'
              ? this.numberCell(next, line, i + 1)
              : parseAmount(String(next).replace(/\s*(VND|đ|d)$/i, ''), this.profile.currency, this.style, line, i + 1);
          this[key] = { amountMinor: v, currency: this.profile.currency, date: null };
        }
        return true;
      }
    }
    return false;
  }

  private findHeader(cells: Cell[], line: number): void {
    const folded = cells.map(fold);
    const roles = new Map<ColumnRole, number>();
    const taken = new Set<number>();
    for (const pass of ['exact', 'words'] as const) {
      for (const role of ASSIGN_ORDER) {
        if (roles.has(role)) continue;
        const kws = this.profile.columns[role];
        if (!kws) continue;
        outer: for (const kw of kws) {
          const re = words(kw);
          for (let i = 0; i < folded.length; i++) {
            if (taken.has(i) || !folded[i]) continue;
            if (pass === 'exact' ? folded[i] === kw : re.test(folded[i]!)) {
              roles.set(role, i);
              taken.add(i);
              break outer;
            }
          }
        }
      }
    }
    const missing = this.required.filter((r) => !roles.has(r));
    if (missing.length === 0) {
      this.header = roles;
      this.headerLine = line;
      if (!this.account) throw malformed(`no account number above the header (a "${this.profile.meta.account[0]}" row) and none given`, line);
      return;
    }
    if (roles.size >= 2 && (!this.bestPartial || missing.length < this.bestPartial.missing.length)) this.bestPartial = { line, missing };
    this.meta(cells, line);
    if (line >= this.profile.headerSearchRows) this.end(line);
  }

  private cell(cells: Cell[], role: ColumnRole): Cell {
    const i = this.header!.get(role);
    return i === undefined ? null : cells[i];
  }

  private col(role: ColumnRole): number {
    return (this.header!.get(role) ?? 0) + 1;
  }

  private numberCell(n: number, line: number, column: number): bigint {
    if (!Number.isFinite(n)) throw malformed(`amount ${n} is not a number`, line, column);
    // An XLSX number is a double; its shortest decimal text is what the sheet shows.
    return parseAmount(
      Number.isInteger(n) && Math.abs(n) < 1e21 ? BigInt(n).toString() : String(n),
      this.profile.currency,
      { decimal: '.', thousands: null },
      line,
      column,
    );
  }

  private amount(c: Cell, role: ColumnRole, line: number): bigint | null {
    if (c === null || c === undefined || (typeof c === 'string' && c.trim() === '')) return null;
    if (typeof c === 'number') return this.numberCell(c, line, this.col(role));
    if (typeof c !== 'string') throw malformed(`the ${role} cell is not an amount`, line, this.col(role));
    return parseAmount(c.replace(/\s*(VND|đ)$/i, ''), this.profile.currency, this.style, line, this.col(role));
  }

  private date(c: Cell, role: ColumnRole, line: number): string | null {
    if (c === null || c === undefined || (typeof c === 'string' && c.trim() === '')) return null;
    // exceljs gives a date cell as the UTC instant of the sheet's wall-clock date.
    if (c instanceof Date) {
      if (Number.isNaN(c.getTime())) throw malformed('the date cell is not a date', line, this.col(role));
      return ymd(c.getUTCFullYear(), c.getUTCMonth() + 1, c.getUTCDate());
    }
    if (typeof c !== 'string') throw malformed(`the ${role} cell is not a date`, line, this.col(role));
    const s = c.trim();
    return /^\d{4}-\d{2}-\d{2}/.test(s) ? isoToVnDate(s.replace(' ', 'T'), line, this.col(role)) : dayFirstToDate(s, line, this.col(role));
  }

  private release(): StatementEvent[] {
    if (!this.held) return [];
    const l = this.held;
    this.held = null;
    l.contentNormalised = normaliseContent(l.contentRaw).normalised;
    this.totals.add(l);
    return [{ kind: 'line', line: l }];
  }

  private dataRow(cells: Cell[], line: number): StatementEvent[] {
    const dateCell = this.cell(cells, 'bookingDate');
    const text = (r: ColumnRole): string | null => {
      const c = this.cell(cells, r);
      return c === null || c === undefined ? null : String(c).trim() || null;
    };
    const noDate = dateCell === null || dateCell === undefined || (typeof dateCell === 'string' && dateCell.trim() === '');
    const looksDate = dateCell instanceof Date || (typeof dateCell === 'string' && /^\s*\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}/.test(dateCell));
    // Totals, "printed by" notes and balance rows carry no date; a payer's text starting "Tong…" does.
    if (!looksDate && cells.map(fold).some((f) => this.profile.footer.some((k) => f.startsWith(k)))) {
      this.meta(cells, line);
      return this.release();
    }
    if (!looksDate && this.meta(cells, line)) return this.release();
    const debit = this.profile.sign === 'split' ? this.amount(this.cell(cells, 'debit'), 'debit', line) : null;
    const credit = this.profile.sign === 'split' ? this.amount(this.cell(cells, 'credit'), 'credit', line) : null;
    const signed = this.profile.sign === 'signed' ? this.amount(this.cell(cells, 'amount'), 'amount', line) : null;
    if (noDate) {
      const more = text('content');
      if (this.held && more && !debit && !credit && signed === null) {
        this.held.contentRaw += ' ' + more;
        return [];
      }
      throw malformed('the row has no date', line, this.col('bookingDate'));
    }
    const booking = this.date(dateCell, 'bookingDate', line)!;
    let amount: bigint;
    let direction: 'credit' | 'debit';
    if (this.profile.sign === 'split') {
      const d = debit ?? 0n;
      const c = credit ?? 0n;
      if (d !== 0n && c !== 0n) throw malformed('the row has both a debit and a credit amount', line, this.col('credit'));
      if (d === 0n && c === 0n) throw malformed('the row has neither a debit nor a credit amount', line, this.col('credit'));
      if (d < 0n || c < 0n) throw malformed('a debit or credit column holds a negative amount', line, this.col(d < 0n ? 'debit' : 'credit'));
      amount = d !== 0n ? d : c;
      direction = d !== 0n ? 'debit' : 'credit';
    } else {
      if (signed === null || signed === 0n) throw malformed('the row has no amount', line, this.col('amount'));
      amount = signed < 0n ? -signed : signed;
      direction = signed < 0n ? 'debit' : 'credit';
    }
    const out = this.release();
    const provisional = this.options.source === 'bank_feed';
    this.held = {
      source: this.options.source ?? 'bank_statement',
      format: this.format,
      account: this.account!,
      statementId: this.statementId(),
      bookingDate: booking,
      valueDate: this.date(this.cell(cells, 'valueDate'), 'valueDate', line),
      amountMinor: amount,
      currency: this.profile.currency,
      direction,
      reversal: false,
      bankReference: text('reference'),
      batchIndex: null,
      endToEndId: null,
      counterpartyName: text('counterpartyName'),
      counterpartyAccount: text('counterpartyAccount'),
      contentRaw: text('content') ?? '',
      contentNormalised: '',
      sourceLine: line,
      provisional,
    };
    return out;
  }
}
