/**
 * Fault knobs every provider simulator has (the sandbox simulator has its own, richer set):
 * a callback lost, duplicated or delayed (held until flush(), which sends the held ones newest
 * first, so they arrive out of order), a wrong amount in the callback, a status query that hangs
 * past the adapter's timeout.
 */
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
      case 'lost': return;
      case 'delayed': this.held.push(deliver); return;
      case 'duplicate': await deliver(); await deliver(); return;
      default: await deliver();
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
