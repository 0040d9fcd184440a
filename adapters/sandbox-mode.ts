/**
 * Sandbox mode: every provider the gateway can speak to, each played by its simulator mounted in
 * the gateway under /sandbox/…, with test credentials derived from FEEGATE_SANDBOX_SECRET (stable
 * across restarts). Adding a provider to sandbox mode touches this file and its own folder only.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import Fastify, { type FastifyPluginAsync } from 'fastify';
import type { Clock } from '../gateway/clock.js';
import type { PaymentAdapter } from './contract.js';
import type { HttpClient } from './http-client.js';
import { sandboxAdapter, sandboxApiAdapter } from './sandbox/adapter.js';
import { SANDBOX_MERCHANT } from './sandbox/protocol.js';
import { SandboxSimulator, simulatorRoutes } from './sandbox/simulator.js';
import { VnpaySimulator, vnpaySimulatorRoutes } from './vnpay/simulator.js';
import { MomoSimulator, momoSimulatorRoutes } from './momo/simulator.js';
import { ZalopaySimulator, zalopaySimulatorRoutes } from './zalopay/simulator.js';
import { PaygovSimulator, paygovSimulatorRoutes } from './paygov/simulator.js';

export interface Simulators {
  sandbox: SandboxSimulator;
  vnpay: VnpaySimulator;
  momo: MomoSimulator;
  zalopay: ZalopaySimulator;
  paygov: PaygovSimulator;
}

export interface SandboxMode {
  adapters: PaymentAdapter[];
  credentials(provider: string): Record<string, string>;
  simulators: Simulators;
  /** Routes to mount, by URL prefix. */
  mounts: [prefix: string, routes: FastifyPluginAsync][];
}

export function sandboxMode(opts: { secret: string; publicUrl: string; http: HttpClient; clock: Clock; sandboxUrl?: string }): SandboxMode {
  const { secret, publicUrl, http, clock } = opts;
  // Where the simulators are: mounted in this gateway, or a standalone process (FEEGATE_SANDBOX_URL).
  const simBase = (opts.sandboxUrl ?? publicUrl).replace(/\/$/, '');
  const derive = (what: string, length: number) => crypto.createHash('sha256').update(`${secret}:${what}`).digest('hex').slice(0, length);
  const vnpayTerminal = { tmnCode: 'FGSBX001', secret: `${secret}:vnpay`, ipnUrl: `${publicUrl}/v1/notify/vnpay` };
  const momoPartner = { partnerCode: 'FGSANDBOXMOMO', accessKey: derive('momo-access', 16), secretKey: derive('momo-secret', 32) };
  const zalopayApp = { appId: 2553, key1: derive('zalopay-key1', 32), key2: derive('zalopay-key2', 32) };
  const paygovPartner = { partnerCode: 'FG-SANDBOX-DVC', secret: derive('paygov-secret', 32) };

  const credentials: Record<string, Record<string, string>> = {
    sandbox: { secret, merchant: SANDBOX_MERCHANT, ...(opts.sandboxUrl ? { base_url: opts.sandboxUrl } : {}) },
    vnpay: {
      tmn_code: vnpayTerminal.tmnCode,
      hash_secret: vnpayTerminal.secret,
      pay_url: `${simBase}/sandbox/vnpay/paymentv2/vpcpay.html`,
      api_url: `${simBase}/sandbox/vnpay/merchant_webapi/api/transaction`,
    },
    momo: { partner_code: momoPartner.partnerCode, access_key: momoPartner.accessKey, secret_key: momoPartner.secretKey, endpoint: `${simBase}/sandbox/momo` },
    zalopay: { app_id: String(zalopayApp.appId), key1: zalopayApp.key1, key2: zalopayApp.key2, endpoint: `${simBase}/sandbox/zalopay` },
    paygov: { partner_code: paygovPartner.partnerCode, secret: paygovPartner.secret, endpoint: `${simBase}/sandbox/paygov` },
  };

  const simulators: Simulators = {
    sandbox: new SandboxSimulator({ secret, http, clock, publicUrl: simBase }),
    vnpay: new VnpaySimulator({ terminal: vnpayTerminal, http, clock }),
    momo: new MomoSimulator({ partner: momoPartner, http, clock, publicUrl: simBase }),
    zalopay: new ZalopaySimulator({ app: zalopayApp, http, clock, publicUrl: simBase }),
    paygov: new PaygovSimulator({ partner: paygovPartner, http, clock, publicUrl: simBase }),
  };
  return {
    // The real providers are always registered (adapters/providers.ts); sandbox mode adds these two.
    adapters: [sandboxAdapter, sandboxApiAdapter],
    // Every sandbox_* variant speaks the sandbox protocol with the sandbox merchant.
    credentials: (provider) => credentials[provider] ?? (provider.startsWith('sandbox') ? credentials.sandbox! : {}),
    simulators,
    mounts: [
      ['/sandbox', simulatorRoutes(simulators.sandbox)],
      ['/sandbox/vnpay', vnpaySimulatorRoutes(simulators.vnpay)],
      ['/sandbox/momo', momoSimulatorRoutes(simulators.momo)],
      ['/sandbox/zalopay', zalopaySimulatorRoutes(simulators.zalopay)],
      ['/sandbox/paygov', paygovSimulatorRoutes(simulators.paygov)],
    ],
  };
}

/**
 * Every simulator in a server of its own: one process, one state. With several gateway processes
 * (FEEGATE_WORKERS > 1) the simulators cannot be mounted in each of them: an order created through
 * one would be unknown to the next (the pay page's POST answered 404, a VNPay querydr 91). The
 * cluster primary runs this and points the workers at it (FEEGATE_SANDBOX_URL), as a standalone
 * `npm run simulator -- all` would. `port` 0: any free port.
 */
export async function serveSimulators(opts: {
  secret: string;
  gatewayUrl: string;
  host: string;
  port: number;
  http: HttpClient;
  clock: Clock;
  logLevel?: string;
}): Promise<{ url: string; close: () => Promise<void> }> {
  const port = opts.port || (await freePort(opts.host));
  const gateway = new URL(opts.gatewayUrl);
  gateway.port = String(port);
  const url = gateway.origin;
  const mode = sandboxMode({ secret: opts.secret, publicUrl: opts.gatewayUrl.replace(/\/$/, ''), http: opts.http, clock: opts.clock, sandboxUrl: url });
  const app = Fastify({ logger: { level: opts.logLevel ?? 'warn' } });
  for (const [prefix, routes] of mode.mounts) await app.register(routes, { prefix });
  await app.listen({ host: opts.host, port });
  return { url, close: () => app.close() };
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net
      .createServer()
      .once('error', reject)
      .listen(0, host, () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
  });
}
