/** ISO 20022 camt.054 (BkToCstmrDbtCdtNtfctn: debit/credit notifications, `Ntfctn` for `Stmt`). See camt-xml.ts. */
import type { Readable } from 'node:stream';
import { parseCamt, type CamtOptions } from './camt-xml.js';
import type { StatementEvent } from '../statement-line.js';

export function parseCamt054(input: Readable, options: CamtOptions = {}): AsyncGenerator<StatementEvent> {
  return parseCamt(input, '054', options);
}
