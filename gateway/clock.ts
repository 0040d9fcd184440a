/**
 * Time is injected. Everything that reads "now" (expiry, schedules, idempotency locks, receipt
 * dates) asks a Clock, so tests move time instead of sleeping.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told to: for tests and simulations. */
export class ManualClock implements Clock {
  private ms: number;
  constructor(start: Date | string = '2026-01-15T03:00:00Z') {
    this.ms = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): Date {
    this.ms += ms;
    return this.now();
  }
  set(to: Date | string): void {
    this.ms = new Date(to).getTime();
  }
}

/** Vietnam is UTC+7 all year (no daylight saving). */
export const VN_OFFSET_MS = 7 * 3600 * 1000;

/** The calendar date in Vietnam (YYYY-MM-DD) of an instant. */
export function vnDate(at: Date): string {
  return new Date(at.getTime() + VN_OFFSET_MS).toISOString().slice(0, 10);
}

/** End of a Vietnamese calendar day (23:59:59.999 +07:00) as an instant. */
export function endOfVnDay(date: string): Date {
  return new Date(new Date(`${date}T00:00:00Z`).getTime() + 24 * 3600 * 1000 - VN_OFFSET_MS - 1);
}
