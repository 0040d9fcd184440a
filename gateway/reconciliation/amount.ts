/**
 * Decimal text → bigint minor units, exactly (never a float). The exponent comes from ISO 4217.
 * An amount with more significant decimals than its currency has is refused, never rounded: a
 * rounding here would be a silent difference in money.
 */
import { StatementError, malformed } from './statement-line.js';

/** ISO 4217 minor-unit exponents that are not 2 (the default for every other active code). */
const EXPONENTS: Record<string, number> = {
  VND: 0,
  JPY: 0,
  KRW: 0,
  CLP: 0,
  ISK: 0,
  PYG: 0,
  UGX: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  KMF: 0,
  GNF: 0,
  DJF: 0,
  RWF: 0,
  BIF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
  CLF: 4,
  UYW: 4,
};

export function currencyExponent(currency: string, line: number | null = null): number {
  if (!/^[A-Z]{3}$/.test(currency)) throw malformed(`currency "${currency.slice(0, 16)}" is not an ISO 4217 code`, line);
  return EXPONENTS[currency] ?? 2;
}

export interface DecimalStyle {
  decimal: '.' | ',';
  /** null: no thousands separator allowed. */
  thousands: '.' | ',' | ' ' | null;
}

/**
 * Parses an unsigned or signed decimal. Returns the signed amount in minor units.
 * `1.000.000` (thousands '.'), `50,000` (thousands ','), `1234,56` (MT940), `885.00000` (camt five decimals).
 */
export function parseAmount(text: string, currency: string, style: DecimalStyle, line: number | null, column: number | null = null): bigint {
  const exp = currencyExponent(currency, line);
  let s = text.trim().replace(/\u00a0/g, ' ');
  let negative = false;
  if (/^\(.*\)$/.test(s)) {
    negative = true;
    s = s.slice(1, -1).trim();
  } // accounting negatives: (1.000)
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s[0] === '-';
    s = s.slice(1).trim();
  }
  const t = style.thousands === null ? '' : style.thousands === '.' ? '\\.' : style.thousands;
  const d = style.decimal === '.' ? '\\.' : ',';
  const grouped = t ? `\\d{1,3}(?:${t}\\d{3})+` : '(?!)';
  const re = new RegExp(`^(${grouped}|\\d+)(?:${d}(\\d*))?$`);
  const m = re.exec(s);
  if (!m || s.length > 40)
    throw malformed(
      `amount "${text.slice(0, 40)}" is not a number in this format (decimal '${style.decimal}', thousands '${style.thousands ?? 'none'}')`,
      line,
      column,
    );
  const intPart = m[1]!.replace(/[^0-9]/g, '');
  let frac = (m[2] ?? '').replace(/0+$/, '');
  if (frac.length > exp) {
    throw new StatementError(
      'FEEGATE_ERR_STATEMENT_UNSUPPORTED',
      `amount ${text.slice(0, 40)} has more decimals than ${currency} has (${exp}); it is never rounded`,
      line,
      column,
    );
  }
  frac = frac.padEnd(exp, '0');
  const minor = BigInt(intPart + frac);
  return negative ? -minor : minor;
}
