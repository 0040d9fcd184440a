/**
 * Statement dates → Vietnam business dates (yyyy-mm-dd in Asia/Ho_Chi_Minh, UTC+7 all year, no DST).
 * A date-time with an offset is moved to Vietnam time first; one without is taken as local.
 * The cut-off (22:00–05:00 booked next day) is the matcher's business, not the parser's.
 */
import { malformed } from './statement-line.js';

const VN_OFFSET_MS = 7 * 3600_000;

export function validYmd(y: number, m: number, d: number): boolean {
  if (y < 1970 || y > 2199 || m < 1 || m > 12 || d < 1) return false;
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return d <= days;
}

export function ymd(y: number, m: number, d: number): string {
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** ISO 8601 date (`2026-03-10`) or date-time (`2026-03-10T23:30:00+07:00`, `…Z`, `…` local). */
export function isoToVnDate(text: string, line: number, column: number | null = null): string {
  const s = text.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(s);
  if (!m || !validYmd(+m[1]!, +m[2]!, +m[3]!)) throw malformed(`"${s.slice(0, 40)}" is not an ISO date`, line, column);
  if (m[4] === undefined || m[7] === undefined) return ymd(+m[1]!, +m[2]!, +m[3]!);
  if (+m[4] > 23 || +m[5]! > 59 || +(m[6] ?? 0) > 59) throw malformed(`"${s.slice(0, 40)}" is not a valid time`, line, column);
  let offsetMin = 0;
  if (m[7] !== 'Z') {
    const o = m[7].replace(':', '');
    offsetMin = (o[0] === '-' ? -1 : 1) * (+o.slice(1, 3) * 60 + +o.slice(3, 5));
  }
  const utc = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4], +m[5]!, +(m[6] ?? 0)) - offsetMin * 60_000;
  return new Date(utc + VN_OFFSET_MS).toISOString().slice(0, 10);
}

/** Day-first dates of Vietnamese exports: dd/mm/yyyy, dd-mm-yyyy, dd.mm.yyyy, optional time after. */
export function dayFirstToDate(text: string, line: number, column: number | null): string {
  const s = text.trim();
  const m = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T]+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?)?$/i.exec(s);
  if (!m || !validYmd(+m[3]!, +m[2]!, +m[1]!)) throw malformed(`"${s.slice(0, 40)}" is not a date dd/mm/yyyy`, line, column);
  return ymd(+m[3]!, +m[2]!, +m[1]!);
}
