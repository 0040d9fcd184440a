/**
 * The real providers the gateway speaks to. Each is usable by a unit once it has stored its own
 * credentials (POST /v1/provider-credentials/:provider); in sandbox mode they also work with the
 * simulators' test credentials. A new provider is a folder and a line here.
 */
import type { PaymentAdapter } from './contract.js';
import { vnpayAdapter } from './vnpay/adapter.js';
import { momoAdapter } from './momo/adapter.js';
import { zalopayAdapter } from './zalopay/adapter.js';
import { paygovAdapter } from './paygov/adapter.js';

export const PROVIDER_ADAPTERS: readonly PaymentAdapter[] = [vnpayAdapter, momoAdapter, zalopayAdapter, paygovAdapter];
