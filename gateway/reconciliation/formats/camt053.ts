/** ISO 20022 camt.053 (BkToCstmrToStmt: end-of-day account statements). See camt-xml.ts. */
import type { Readable } from 'node:stream';
import { parseCamt, type CamtOptions } from './camt-xml.js';
import type { StatementEvent } from '../statement-line.js';

export function parseCamt053(input: Readable, options: CamtOptions = {}): AsyncGenerator<StatementEvent> {
  return parseCamt(input, '053', options);
}
