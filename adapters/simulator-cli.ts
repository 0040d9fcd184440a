/**
 * Runs a provider simulator as its own process, so it outlives the gateway (kill tests) or plays
 * the provider for a gateway elsewhere:
 *   npm run simulator -- sandbox --port 4010 [--secret S] [--public-url http://127.0.0.1:4010]
 * Point the gateway at it with FEEGATE_SANDBOX_URL=http://127.0.0.1:4010 (same secret).
 */
import Fastify from 'fastify';
import { Command } from 'commander';
import { systemClock } from '../gateway/clock.js';
import { fetchHttpClient } from './http-client.js';
import { SandboxSimulator, simulatorRoutes } from './sandbox/simulator.js';

const program = new Command('simulator')
  .argument('<provider>', 'which provider to simulate: sandbox')
  .option('--port <port>', 'port to listen on', '4010')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--secret <secret>', 'merchant secret (default: FEEGATE_SANDBOX_SECRET or the dev secret)')
  .option('--public-url <url>', 'base URL payers reach this simulator at')
  .action(async (provider: string, o: { port: string; host: string; secret?: string; publicUrl?: string }) => {
    if (provider !== 'sandbox') throw new Error(`no simulator for "${provider}" yet (have: sandbox)`);
    const secret = o.secret ?? process.env.FEEGATE_SANDBOX_SECRET ?? 'dev-only-sandbox-secret-not-for-production';
    const publicUrl = (o.publicUrl ?? `http://${o.host}:${o.port}`).replace(/\/$/, '');
    const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } });
    const sim = new SandboxSimulator({ secret, http: fetchHttpClient, clock: systemClock, publicUrl });
    await app.register(simulatorRoutes(sim), { prefix: '/sandbox' });
    await app.listen({ host: o.host, port: Number(o.port) });
    console.log(`sandbox simulator listening on ${publicUrl}/sandbox`);
    const stop = () => void app.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
