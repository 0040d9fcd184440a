/**
 * Every error the API can return, declared once. The code is stable (clients switch on it);
 * the message is for people and may improve. The README's error table is generated from this list
 * (`npm run cli -- errors`).
 */
export const ERRORS = {
  FEEGATE_ERR_VALIDATION: { status: 400, message: 'The request does not match the schema' },
  FEEGATE_ERR_MALFORMED_BODY: { status: 400, message: 'The request body could not be parsed' },
  FEEGATE_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported Content-Type' },
  FEEGATE_ERR_BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than allowed' },
  FEEGATE_ERR_TEXT_INVALID: {
    status: 400,
    message: 'Text must be well-formed Unicode with no NUL or control characters; names and keys need a visible character',
  },
  FEEGATE_ERR_DATE_INVALID: { status: 400, message: 'Dates are YYYY-MM-DD calendar days from 2000-01-01 to 2999-12-31' },
  FEEGATE_ERR_CURSOR_INVALID: { status: 400, message: 'The cursor is not one this API returned' },
  FEEGATE_ERR_URL_INVALID: { status: 400, message: 'The URL could not be decoded, or a path segment is too long' },
  FEEGATE_ERR_MALFORMED_REQUEST: { status: 400, message: 'The HTTP request could not be parsed (request line, headers or framing)' },
  FEEGATE_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are larger than allowed' },
  FEEGATE_ERR_REQUEST_TIMEOUT: { status: 408, message: 'The request was not received in time' },
  FEEGATE_ERR_AMOUNT_INVALID: { status: 400, message: 'Amounts are integer VND from 1 to 10^15' },
  FEEGATE_ERR_AMOUNT_MISMATCH: { status: 400, message: 'The amounts do not add up' },
  FEEGATE_ERR_AUTH_MISSING: { status: 401, message: 'An API key is required (Authorization: Bearer fg_...)' },
  FEEGATE_ERR_AUTH_INVALID: { status: 401, message: 'The API key is not valid' },
  FEEGATE_ERR_AUTH_REVOKED: { status: 401, message: 'The API key has been revoked' },
  FEEGATE_ERR_FORBIDDEN_ROLE: { status: 403, message: "The API key's role does not allow this" },
  FEEGATE_ERR_NOT_FOUND: { status: 404, message: 'No such route' },
  FEEGATE_ERR_BILL_NOT_FOUND: { status: 404, message: 'No such bill' },
  FEEGATE_ERR_PAYMENT_NOT_FOUND: { status: 404, message: 'No such payment' },
  FEEGATE_ERR_API_KEY_NOT_FOUND: { status: 404, message: 'No such API key' },
  FEEGATE_ERR_WEBHOOK_ENDPOINT_NOT_FOUND: { status: 404, message: 'No such webhook endpoint' },
  FEEGATE_ERR_EVENT_NOT_FOUND: { status: 404, message: 'No such event' },
  FEEGATE_ERR_OUTBOX_ROW_NOT_FOUND: { status: 404, message: 'No such dead outbox row' },
  FEEGATE_ERR_BILL_EXISTS: { status: 409, message: 'A bill with this external reference exists with other content' },
  FEEGATE_ERR_BILL_NOT_PAYABLE: { status: 409, message: 'The bill cannot be paid in its current state' },
  FEEGATE_ERR_BILL_NOT_CANCELLABLE: { status: 409, message: 'The bill cannot be cancelled in its current state' },
  FEEGATE_ERR_PAYMENT_IN_PROGRESS: { status: 409, message: 'The bill already has a payment in progress' },
  FEEGATE_ERR_PAYMENT_AMOUNT_INVALID: { status: 400, message: 'The payment amount does not fit the bill' },
  FEEGATE_ERR_PAYMENT_ABOVE_PROVIDER_MAX: { status: 400, message: 'The payment amount is above the largest this provider takes' },
  FEEGATE_ERR_PAYMENT_NOT_REFUNDABLE: { status: 409, message: 'The payment cannot be refunded in its current state' },
  FEEGATE_ERR_REFUND_EXCEEDS_REFUNDABLE: { status: 400, message: 'The refund is above what is left to refund' },
  FEEGATE_ERR_PROVIDER_CREDENTIALS_NOT_FOUND: { status: 404, message: 'The unit has no credentials for this provider' },
  FEEGATE_ERR_URL_NOT_ALLOWED: { status: 400, message: 'The URL is refused: https to a public host only (details.reason says why)' },
  FEEGATE_ERR_PROVIDER_UNKNOWN: { status: 400, message: 'No such provider, or it is not enabled' },
  FEEGATE_ERR_IDEMPOTENCY_KEY_INVALID: { status: 400, message: 'Idempotency-Key must be 1 to 255 printable ASCII characters' },
  FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'This Idempotency-Key was used with other parameters' },
  FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS: { status: 409, message: 'A request with this Idempotency-Key is still in progress' },
  FEEGATE_ERR_RATE_LIMITED: { status: 429, message: 'Too many requests for this API key' },
  FEEGATE_ERR_CERT_INVALID: { status: 400, message: 'The certificate or key could not be read' },
  FEEGATE_ERR_CERT_PASSWORD: { status: 400, message: 'The PKCS#12 password is wrong or the file is damaged' },
  FEEGATE_ERR_CERT_KEY_MISMATCH: { status: 400, message: 'The private key does not belong to the certificate' },
  FEEGATE_ERR_CERT_EXPIRED: { status: 400, message: 'The certificate has expired' },
  FEEGATE_ERR_CERT_NOT_YET_VALID: { status: 400, message: 'The certificate is not valid yet' },
  FEEGATE_ERR_CERT_KEY_USAGE: { status: 400, message: 'The certificate may not sign documents' },
  FEEGATE_ERR_CERT_UNTRUSTED: { status: 400, message: 'The certificate does not chain up to a trust anchor' },
  FEEGATE_ERR_CERT_TAX_CODE_MISMATCH: { status: 400, message: "The certificate's tax code is not the unit's" },
  FEEGATE_ERR_SIGNING_CERT_MISSING: { status: 409, message: 'The unit has no signing certificate' },
  FEEGATE_ERR_RECEIPT_NOT_FOUND: { status: 404, message: 'No such receipt' },
  FEEGATE_ERR_RECEIPT_SERIES_NOT_FOUND: { status: 404, message: 'No such receipt series' },
  FEEGATE_ERR_RECEIPT_SERIES_EXISTS: { status: 409, message: 'This receipt series exists' },
  FEEGATE_ERR_XML_MALFORMED: { status: 400, message: 'The XML could not be parsed' },
  FEEGATE_ERR_XML_DTD_FORBIDDEN: { status: 400, message: 'XML with a DTD or entity declarations is refused' },
  FEEGATE_ERR_XML_TOO_COMPLEX: { status: 400, message: 'The XML has more elements, nesting or attributes than a receipt can have' },
  FEEGATE_ERR_STATEMENT_MALFORMED: { status: 400, message: 'The statement file could not be parsed (see the line and column)' },
  FEEGATE_ERR_STATEMENT_UNSUPPORTED: { status: 415, message: 'The statement format, version or currency precision is not supported' },
  FEEGATE_ERR_STATEMENT_ENCODING: { status: 400, message: 'The statement file is not UTF-8 text (or the declared encoding)' },
  FEEGATE_ERR_STATEMENT_DTD_FORBIDDEN: { status: 400, message: 'Statement XML with a DTD or entity declarations is refused' },
  FEEGATE_ERR_STATEMENT_TOO_COMPLEX: { status: 400, message: 'The statement has a field, line or batch larger than any bank sends' },
  FEEGATE_ERR_VERIFIER_BUSY: { status: 503, message: 'The receipt verifier is busy; retry later' },
  FEEGATE_ERR_INTERNAL: { status: 500, message: 'Internal error' },
  FEEGATE_ERR_SERVICE_UNAVAILABLE: { status: 503, message: 'The service is not ready' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class FeegateError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details?: unknown;
  constructor(code: ErrorCode, message?: string, details?: unknown) {
    super(message ?? ERRORS[code].message);
    this.name = 'FeegateError';
    this.code = code;
    this.statusCode = ERRORS[code].status;
    this.details = details;
  }
  toJSON(): { error: { code: ErrorCode; message: string; details?: unknown } } {
    return { error: { code: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) } };
  }
}

export function fail(code: ErrorCode, message?: string, details?: unknown): never {
  throw new FeegateError(code, message, details);
}

/** PostgreSQL unique_violation, optionally on a named constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string; message?: string } | null;
  if (!e || e.code !== '23505') return false;
  if (!constraint) return true;
  return e.constraint === constraint || (e.message ?? '').includes(constraint);
}
