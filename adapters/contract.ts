/**
 * The adapter contract. An adapter translates between feegate and one provider: it builds the
 * provider's requests, verifies and parses the provider's messages, and maps the provider's codes
 * to our outcome. It never touches the database; the core decides. Outbound HTTP goes through
 * the injected HttpClient, so tests and the sandbox point it at the simulators.
 */
import type { Clock } from '../gateway/clock.js';
import type { HttpClient } from './http-client.js';

/** What a provider says about money: Kill Bill's tri-state plus "don't know". */
export type Outcome = 'succeeded' | 'pending' | 'failed' | 'cancelled' | 'unknown';

export interface CredentialField {
  name: string;
  secret: boolean;
  optional?: boolean;
}

export interface AdapterContext {
  http: HttpClient;
  clock: Clock;
  /** The provider's credentials for this tenant (terminal codes, keys). Never logged. */
  credentials: Record<string, string>;
  /** Our public base URL, for callback and return URLs. */
  publicUrl: string;
}

export interface CheckoutRequest {
  /** Our reference, allocated before the provider is called: the provider's order id. */
  reference: string;
  amount: number;
  currency: 'VND';
  description: string;
  /** Where the provider sends the payer's browser back (our return route). */
  returnUrl: string;
  /** Where the provider sends the server-to-server notification (our notify route). */
  notifyUrl: string;
  /**
   * When the payment row was created (stored). Protocol fields a later query rebuilds (VNPay's
   * vnp_CreateDate, ZaloPay's yymmdd_ app_trans_id and app_time) come from it, never from the clock:
   * the query must name the order exactly as the create did, even across a second or midnight.
   */
  createdAt: Date;
  /** The payment's deadline (stored), sent as the order's own expiry where the provider has one. */
  expiresAt: Date;
  clientIp?: string;
  /**
   * What is being paid, for providers that carry it (PayGov: the dossier and its fee items). Given
   * on the remote checkout path; the items add up to `amount` (a partial payment is one line).
   */
  details?: {
    dossierCode: string | null;
    procedureCode: string | null;
    payerName: string;
    items: { code: string; name: string; amount: number }[];
  };
}

export interface Checkout {
  type: 'redirect' | 'qr' | 'deeplink';
  url?: string;
  qr_payload?: string;
  deeplink?: string;
}

export type CheckoutResult =
  | { outcome: 'pending'; checkout: Checkout; providerTxnId?: string }
  | { outcome: 'failed'; code: string; message: string }
  | { outcome: 'unknown'; message: string };

/** An inbound HTTP message from a provider, as the route received it. */
export interface InboundHttp {
  method: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  /** The body as received (callbacks are verified over the exact bytes). */
  rawBody: string;
}

export interface ProviderNotification {
  /** Our reference, as the provider echoes it. */
  reference: string;
  providerTxnId: string;
  /** Dedupe key part: the same (provider, txn, eventType) is processed once. */
  eventType: string;
  outcome: Outcome;
  amount: number;
  currency: string;
  code?: string;
  message?: string;
  /** The verified fields, stored with the event. */
  payload: Record<string, unknown>;
}

export type VerifyResult = { ok: true; notification: ProviderNotification } | { ok: false; reason: 'signature' | 'malformed' | 'stale'; message: string };

/** Every answer a provider expects from us, in its own format. */
export type AnswerKind = 'ok' | 'already_confirmed' | 'unknown_order' | 'amount_mismatch' | 'bad_signature' | 'malformed' | 'error';

export interface CallbackAnswer {
  status: number;
  contentType?: string;
  body?: string;
}

export interface StatusQuery {
  reference: string;
  providerTxnId?: string | null;
  amount: number;
  createdAt: Date;
}

export interface StatusResult {
  outcome: Outcome;
  amount?: number;
  providerTxnId?: string;
  code?: string;
  message?: string;
  /** The provider does not know the order (never paid or never reached it). */
  notFound?: boolean;
}

export interface RefundRequest {
  /** Our refund reference (unique; the provider's request id). */
  refundReference: string;
  paymentReference: string;
  providerTxnId?: string | null;
  amount: number;
  paymentAmount: number;
  reason: string;
  paidAt?: Date | null;
  /** When the refund was created here (providers that date their refund ids use this day). */
  requestedAt?: Date;
}

export interface RefundResult {
  outcome: 'succeeded' | 'pending' | 'failed' | 'unknown';
  providerRefundId?: string;
  code?: string;
  message?: string;
}

/** What the janitor asks about a refund whose outcome we do not know. */
export interface RefundQuery {
  refundReference: string;
  paymentReference: string;
  amount: number;
  /** When the payment was created (VNPay's querydr needs the original vnp_CreateDate). */
  paymentCreatedAt: Date;
  /** When we asked the provider for the refund. */
  requestedAt: Date;
  /** Other refunds of the same payment that may exist at the provider: all but failed ones (some providers report only the latest). */
  otherRefunds: number;
}

export interface RefundStatus extends RefundResult {
  /** The provider has no record of the refund: the request never reached it. */
  notFound?: boolean;
}

/** One line of a provider's settlement or transaction report, in our common shape. */
export interface SettlementLine {
  providerRef: string;
  ourRef: string;
  amount: number;
  fee: number;
  occurredAt: Date;
  status: 'succeeded' | 'refunded' | 'failed';
}

export interface PaymentAdapter {
  /** Stable id used in URLs and the database (`sandbox`, `vnpay`, ...). */
  readonly id: string;
  readonly displayName: string;
  /** A sandbox adapter is refused in production mode. */
  readonly sandbox: boolean;
  /** The HTTP method the provider uses for its server-to-server notification. */
  readonly notifyMethod: 'GET' | 'POST';
  /**
   * `local`: createCheckout makes no network call and nothing exists at the provider until the
   * payer arrives (a signed redirect like VNPay's, a VietQR payload); the core then creates the
   * payment and its checkout in one transaction. `remote`: createCheckout creates an order at the
   * provider (MoMo, ZaloPay); the core stores the payment first, calls outside any transaction,
   * and applies the answer after.
   */
  readonly checkoutFlow: 'local' | 'remote';
  /**
   * The credentials a unit stores for this provider (POST /v1/provider-credentials/:provider).
   * Secret ones are sealed at rest and never shown again; the others are shown to admins.
   */
  readonly credentialFields: readonly CredentialField[];
  /**
   * The largest payment (VND) the provider takes and its messages can carry exactly: a payment
   * above it is refused when it is created (FEEGATE_ERR_PAYMENT_ABOVE_PROVIDER_MAX), and a message
   * claiming more is refused as malformed. Never above Number.MAX_SAFE_INTEGER (nor, for providers
   * that scale amounts, its scaled-down value).
   */
  readonly maxAmount: number;
  /** When the janitor first asks about a new payment (seconds); the configured schedule otherwise. */
  readonly firstStatusCheckSeconds?: number;

  createCheckout(ctx: AdapterContext, req: CheckoutRequest): Promise<CheckoutResult>;
  /** Our reference from an unverified message, only to find whose credentials verify it. */
  peekReference(msg: InboundHttp): string | null;
  verifyNotification(ctx: AdapterContext, msg: InboundHttp): VerifyResult;
  /** The browser return: verified like a notification, but it never credits anything. */
  verifyReturn(ctx: AdapterContext, msg: InboundHttp): VerifyResult;
  answer(kind: AnswerKind): CallbackAnswer;
  queryStatus(ctx: AdapterContext, q: StatusQuery): Promise<StatusResult>;
  refund(ctx: AdapterContext, req: RefundRequest): Promise<RefundResult>;
  /** The outcome of a refund asked for earlier (for the janitor); unknown while the provider cannot say. */
  queryRefund(ctx: AdapterContext, q: RefundQuery): Promise<RefundStatus>;
  parseSettlement(content: string): SettlementLine[];
}
