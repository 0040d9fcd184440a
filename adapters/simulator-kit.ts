/**
 * Fault knobs every provider simulator has (the sandbox simulator has its own, richer set):
 * a callback lost, duplicated or delayed (held until flush(), which sends the held ones newest
 * first, so they arrive out of order), a wrong amount in the callback, a status query that hangs
 * past the adapter's timeout.
 */
import type { FastifyInstance } from 'fastify';

export interface FaultKnobs {
  delivery?: 'normal' | 'lost' | 'duplicate' | 'delayed';
  /** The callback claims 1,000 VND more than the order (the gateway must refuse it). */
  wrongAmount?: boolean;
  /** The status query answers only after this long (longer than the adapter waits: a timeout). */
  queryHangMs?: number;
}

export class CallbackSender {
  private held: (() => Promise<void>)[] = [];

  /** Sends (or loses, doubles, holds) one callback as the order's knobs say. */
  async send(knobs: FaultKnobs, deliver: () => Promise<void>): Promise<void> {
    switch (knobs.delivery ?? 'normal') {
      case 'lost':
        return;
      case 'delayed':
        this.held.push(deliver);
        return;
      case 'duplicate':
        await deliver();
        await deliver();
        return;
      default:
        await deliver();
    }
  }

  /** Sends every held callback, newest first. Returns how many. */
  async flush(): Promise<number> {
    const held = this.held.reverse();
    this.held = [];
    for (const deliver of held) await deliver();
    return held.length;
  }
}

export async function maybeHang(knobs: FaultKnobs | undefined): Promise<void> {
  if (knobs?.queryHangMs) await new Promise((r) => setTimeout(r, knobs.queryHangMs));
}

/** A signed result as query parameters (for the browser's way back). */
export function toQuery(fields: Record<string, unknown>): string {
  return new URLSearchParams(Object.entries(fields).map(([k, v]) => [k, String(v)])).toString();
}

/**
 * The POST behind a simulator's payment page: the payer's choice completes the order (callback
 * included), then the browser goes back to the merchant with the provider's signed result.
 */
export function payerChoiceRoute<R extends string, O>(
  app: FastifyInstance,
  path: string,
  opts: {
    choices: readonly R[];
    complete(id: string, result: R): Promise<O | undefined>;
    back(order: O): { url: string; query: string };
  },
): void {
  app.post<{ Params: { id: string }; Body: { result?: string } }>(path, { schema: { hide: true } }, async (req, reply) => {
    const result = req.body?.result as R | undefined;
    if (!result || !opts.choices.includes(result)) return reply.code(400).send('bad result');
    const o = await opts.complete(req.params.id, result);
    if (!o) return reply.code(404).send('order not found');
    const { url, query } = opts.back(o);
    return reply.redirect(`${url}${url.includes('?') ? '&' : '?'}${query}`, 303);
  });
}

/** 2020-01-01T00:00:00Z: transaction numbers count microseconds from here (15 digits until 2051). */
const TXN_EPOCH_MS = Date.UTC(2020, 0, 1);

/**
 * A simulator's transaction numbers, unique across restarts without any stored state: each is the
 * number of real microseconds since 2020, or one more than the last if that is larger. A restarted
 * simulator therefore starts past every number its previous run gave (unless that run averaged
 * over a million a second), as a provider's own numbers only grow. The real clock, not the
 * simulated one: tests and restarts put the simulated clock back to the same instant.
 */
export class TxnNumbers {
  private last = 0;

  next(): number {
    const now = Math.floor((performance.timeOrigin + performance.now() - TXN_EPOCH_MS) * 1000);
    this.last = Math.max(this.last + 1, now);
    return this.last;
  }
}
