/**
 * `npm run simulator -- all`: the VNPay, MoMo, ZaloPay and PayGov simulators as their own process, with a
 * gateway listening on a real port and pointed at them (FEEGATE_SANDBOX_URL). A payer's browser
 * opens the checkout page at the simulator, submits its form, the simulator calls the gateway
 * back over HTTP, and the payment succeeds.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { eachDb } from './helpers/db.js';
import { billAndPayment, client, makeApp, seedTenant } from './helpers/app.js';
import { ManualClock } from '../gateway/clock.js';

const root = path.resolve(import.meta.dirname, '..');
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

eachDb(
  'standalone simulators: pay with VNPay, MoMo, ZaloPay and PayGov over real HTTP',
  async (t, { db }) => {
    const [gwPort, simPort] = [await freePort(), await freePort()];
    const secret = 'standalone-test-secret';
    const sim = spawn(
      process.execPath,
      ['--import', 'tsx', 'adapters/simulator-cli.ts', 'all', '--port', String(simPort), '--gateway-url', `http://127.0.0.1:${gwPort}`, '--secret', secret],
      { cwd: root },
    );
    t.teardown(() => {
      sim.kill('SIGTERM');
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      sim.stdout.on('data', (d) => {
        out += d;
        if (out.includes('listening')) resolve();
      });
      sim.on('exit', (c) => reject(new Error(`simulator exited ${c}`)));
    });
    // The simulator runs on real time, so the gateway does too (its checkout dates must be current).
    const env = await makeApp(
      db,
      { publicUrl: `http://127.0.0.1:${gwPort}`, sandboxUrl: `http://127.0.0.1:${simPort}`, sandboxSecret: secret },
      new ManualClock(new Date()),
    );
    t.teardown(env.close);
    await env.app.listen({ host: '127.0.0.1', port: gwPort });
    const ten = await seedTenant(db, env.clock);

    for (const provider of ['vnpay', 'momo', 'zalopay', 'paygov']) {
      const { payment } = await billAndPayment(env.app, ten.keys.integration, {}, provider);
      const url = payment.checkout.url as string;
      t.ok(url.startsWith(`http://127.0.0.1:${simPort}/sandbox/${provider}/`), `${provider}: checkout at the standalone simulator`);
      const page = await fetch(url);
      const html = await page.text();
      t.equal(page.status, 200, `${provider}: the payment page opens ${page.status === 200 ? '' : html}`);
      const form = /<form method="post"(?: action="([^"]*)")?>/.exec(html);
      t.ok(form, `${provider}: the page has the payer's form`);
      const submit = await fetch(new URL((form?.[1] ?? '').replace(/&amp;/g, '&'), url), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'result=success',
        redirect: 'manual',
      });
      t.ok(submit.status === 303 || submit.status === 302, `${provider}: paid, the browser is sent back`);
      let status = '';
      for (let i = 0; i < 100 && status !== 'succeeded'; i++) {
        status = (await client(env.app, ten.keys.integration).get(`/v1/payments/${payment.id}`)).body.status;
        if (status !== 'succeeded') await new Promise((r) => setTimeout(r, 50));
      }
      t.equal(status, 'succeeded', `${provider}: the simulator's callback over HTTP settled the payment`);
    }
  },
  { engines: ['pglite'] },
);
