/**
 * Money is integer VND. The database stores bigint; the API speaks JSON integers; inside we use
 * JavaScript numbers restricted to safe integers (|x| <= 2^53 - 1), checked at every boundary.
 */
export const MAX_AMOUNT = 1_000_000_000_000_000; // 10^15 VND: far above any fee, far below 2^53

export type Vnd = number;

/** Converts a database value (pg returns int8 as string) to a checked safe integer. */
export function vnd(value: string | number | bigint | null | undefined): Vnd {
  if (value === null || value === undefined) return 0;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`amount ${String(value)} is not a safe integer`);
  if (typeof value === 'string' && String(n) !== value.replace(/^(-?)0+(?=\d)/, '$1')) {
    throw new Error(`amount ${value} is not an integer`);
  }
  return n;
}

/** Sums amounts, refusing to leave the safe-integer range. */
export function sum(amounts: readonly Vnd[]): Vnd {
  let total = 0;
  for (const a of amounts) {
    total += a;
    if (!Number.isSafeInteger(total)) throw new Error('amount overflow');
  }
  return total;
}
