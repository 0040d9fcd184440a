/**
 * Worker side of the verifier pool (verifier-pool.ts): one receipt in, its report out. A refusal
 * (FeegateError: too large, DTD, too complex, malformed) is returned as data, since a class does
 * not survive the structured clone between threads.
 */
import { FeegateError } from '../gateway/errors.js';
import { verifyReceiptXml, type VerificationReport } from './verify.js';

export interface VerifyTask {
  xml: string;
  anchors: string[];
}
export type VerifyOutcome = { report: VerificationReport } | { refused: { code: FeegateError['code']; message: string; details?: unknown } };

export default function verify({ xml, anchors }: VerifyTask): VerifyOutcome {
  try {
    return { report: verifyReceiptXml(xml, anchors) };
  } catch (err) {
    if (err instanceof FeegateError) return { refused: { code: err.code, message: err.message, details: err.details } };
    throw err;
  }
}
