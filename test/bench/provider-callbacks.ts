/**
 * Signed callbacks exactly as each provider sends them, for the benchmark: built by the providers'
 * own simulators (sandbox mode's test credentials, derived from the sandbox secret) for orders the
 * benchmark seeded as pending payments.
 */
import { sandboxMode } from '../../adapters/sandbox-mode.js';
import { systemClock } from '../../gateway/clock.js';
import { fetchHttpClient } from '../../adapters/http-client.js';
import { appTransId } from '../../adapters/zalopay/protocol.js';
import { vnpDate } from '../../adapters/vnpay/protocol.js';

export interface CallbackRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export const BENCH_PROVIDERS = ['vnpay', 'momo', 'zalopay', 'paygov'] as const;
export type BenchProvider = (typeof BENCH_PROVIDERS)[number];

export function callbackFactory(secret: string, publicUrl: string): Record<BenchProvider, (reference: string, amount: number, n: number) => CallbackRequest> {
  const { simulators: s } = sandboxMode({ secret, publicUrl, http: fetchHttpClient, clock: systemClock });
  const json = { 'content-type': 'application/json' };
  const knobs = {};
  return {
    vnpay: (reference, amount, n) => ({
      method: 'GET',
      headers: {},
      path: `/v1/notify/vnpay?${s.vnpay.resultQuery({
        txnRef: reference,
        amount,
        orderInfo: 'Hoc phi',
        returnUrl: '',
        createDate: vnpDate(new Date()),
        expireAt: undefined,
        status: 'SUCCESS',
        responseCode: '00',
        transactionNo: String(14_000_000 + n),
        payDate: vnpDate(new Date()),
        refunded: 0,
        knobs,
        ipnAnswers: [],
      })}`,
    }),
    momo: (reference, amount, n) => ({
      method: 'POST',
      headers: json,
      path: '/v1/notify/momo',
      body: JSON.stringify(
        s.momo.result({
          orderId: reference,
          requestId: reference,
          amount,
          orderInfo: 'Hoc phi',
          redirectUrl: '',
          ipnUrl: '',
          extraData: '',
          resultCode: 0,
          message: 'Successful.',
          transId: 4_100_000_000 + n,
          responseTime: Date.now(),
          refunded: 0,
          refunds: [],
          knobs,
          ipnStatuses: [],
        }),
      ),
    }),
    zalopay: (reference, amount, n) => ({
      method: 'POST',
      headers: json,
      path: '/v1/notify/zalopay',
      body: s.zalopay.callbackBody({
        appTransId: appTransId(new Date(), reference),
        amount,
        callbackUrl: '',
        redirectUrl: '',
        appTime: Date.now(),
        embedData: '{}',
        item: '[]',
        appUser: 'bench',
        status: 'PAID',
        zpTransId: 260_000_000 + n,
        serverTime: Date.now(),
        refunded: 0,
        knobs,
        callbackAnswers: [],
      }),
    }),
    paygov: (reference, amount, n) => ({
      method: 'POST',
      headers: json,
      path: '/v1/notify/paygov',
      body: JSON.stringify(
        s.paygov.result({
          orderId: reference,
          transactionId: `PGB${n}`,
          amount,
          description: '',
          dossierCode: '',
          payerName: '',
          feeItems: [],
          returnUrl: '',
          notifyUrl: '',
          expireAt: new Date(),
          status: 'SUCCESS',
          bankCode: 'VCB',
          paidAt: '20260915101500',
          refunded: 0,
          knobs,
          notifyAnswers: [],
        }),
      ),
    }),
  };
}
