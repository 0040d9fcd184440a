/**
 * Runs provider simulators as their own process, so they outlive the gateway (kill tests) or play
 * the providers for a gateway elsewhere:
 *   npm run simulator -- <sandbox|vnpay|momo|zalopay|paygov|all> --port 4010 --gateway-url http://127.0.0.1:3000
 * Point the gateway at it with FEEGATE_SANDBOX_URL=http://127.0.0.1:4010 and the same
 * FEEGATE_SANDBOX_SECRET: both sides derive the same test terminal/partner/app credentials from it.
 * --gateway-url is where VNPay's IPN goes (VNPay configures it per terminal; the others receive it
 * in each create call).
 */
import Fastify from 'fastify';
import { Command } from 'commander';
import { systemClock } from '../gateway/clock.js';
import { fetchHttpClient } from './http-client.js';
import { sandboxMode } from './sandbox-mode.js';

const PROVIDERS = ['sandbox', 'vnpay', 'momo', 'zalopay', 'paygov'];

const program = new Command('simulator')
  .argument('<provider>', `which provider to simulate: ${PROVIDERS.join(', ')}, or all`)
  .option('--port <port>', 'port to listen on', '4010')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--secret <secret>', 'sandbox secret (default: FEEGATE_SANDBOX_SECRET or the dev secret)')
  .option('--public-url <url>', 'base URL payers reach this simulator at')
  .option('--gateway-url <url>', 'the gateway (VNPay IPN target)', 'http://127.0.0.1:3000')
  .action(async (provider: string, o: { port: string; host: string; secret?: string; publicUrl?: string; gatewayUrl: string }) => {
    if (provider !== 'all' && !PROVIDERS.includes(provider)) throw new Error(`no simulator for "${provider}" (have: ${PROVIDERS.join(', ')}, all)`);
    const secret = o.secret ?? process.env.FEEGATE_SANDBOX_SECRET ?? 'dev-only-sandbox-secret-not-for-production';
    const publicUrl = (o.publicUrl ?? `http://${o.host}:${o.port}`).replace(/\/$/, '');
    const mode = sandboxMode({ secret, publicUrl: o.gatewayUrl.replace(/\/$/, ''), http: fetchHttpClient, clock: systemClock, sandboxUrl: publicUrl });
    const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } });
    const wanted = mode.mounts.filter(([prefix]) => provider === 'all' || prefix === (provider === 'sandbox' ? '/sandbox' : `/sandbox/${provider}`));
    for (const [prefix, routes] of wanted) await app.register(routes, { prefix });
    await app.listen({ host: o.host, port: Number(o.port) });
    console.log(`${provider} simulator listening on ${wanted.map(([prefix]) => publicUrl + prefix).join(', ')}`);
    const stop = () => void app.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
