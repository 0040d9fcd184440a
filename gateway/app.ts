/**
 * buildApp(options) → a ready fastify instance: plugins, routes, error handling, the sandbox
 * simulator when sandbox mode is on. No listening, no migrations: server.ts does those.
 */
import crypto from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from './db/knex.js';
import type { Config } from './config.js';
import { systemClock, type Clock } from './clock.js';
import type { Deps } from './deps.js';
import { FeegateError } from './errors.js';
import { ApiKeyResolver } from './tenants/api-keys.js';
import { Metrics } from './http/metrics.js';
import { authPlugin } from './http/auth.js';
import { idempotencyPlugin } from './http/idempotency-hooks.js';
import { errorHandlerPlugin } from './http/error-handler.js';
import { ErrorBody } from './http/schemas.js';
import { billRoutes } from './bills/routes.js';
import { paymentRoutes } from './payments/routes.js';
import { tenantRoutes } from './tenants/routes.js';
import { callbackRoutes } from './callbacks/routes.js';
import { webhookRoutes } from './webhooks/routes.js';
import { ProviderRegistry, type CredentialResolver } from '../adapters/registry.js';
import { fetchHttpClient, withTimeout, type HttpClient } from '../adapters/http-client.js';
import { sandboxAdapter, sandboxApiAdapter } from '../adapters/sandbox/adapter.js';
import { SANDBOX_MERCHANT } from '../adapters/sandbox/protocol.js';
import { SandboxSimulator, simulatorRoutes } from '../adapters/sandbox/simulator.js';
import { SecretBox } from './secrets/secret-box.js';
import { vnpayAdapter } from '../adapters/vnpay/adapter.js';
import { momoAdapter } from '../adapters/momo/adapter.js';
import { zalopayAdapter } from '../adapters/zalopay/adapter.js';
import { ZalopaySimulator, zalopaySimulatorRoutes } from '../adapters/zalopay/simulator.js';
import { MomoSimulator, momoSimulatorRoutes } from '../adapters/momo/simulator.js';
import { VnpaySimulator, vnpaySimulatorRoutes } from '../adapters/vnpay/simulator.js';
import { webhookHandlers } from './webhooks/handlers.js';
import type { OutboxHandler } from './outbox/outbox.js';
import './http/fastify-types.js';

export interface AppOptions {
  config: Config;
  db: Db;
  clock?: Clock;
  /** Outbound HTTP for adapters; defaults to fetch, with calls to our own URL served in-process. */
  http?: HttpClient;
  logger?: FastifyServerOptions['logger'];
  /** More outbox handlers (tests register their own kinds). */
  extraHandlers?: OutboxHandler[];
}

export interface App extends FastifyInstance {
  sandbox?: SandboxSimulator;
  vnpay?: VnpaySimulator;
  momo?: MomoSimulator;
  zalopay?: ZalopaySimulator;
}

/**
 * Calls to our own public URL (the mounted simulator, and the simulator's callbacks to us) are
 * served in-process through fastify's inject: the same routes, no socket.
 */
function localFirstClient(app: FastifyInstance, publicUrl: string, fallback: HttpClient): HttpClient {
  return {
    async request(req) {
      if (!req.url.startsWith(publicUrl + '/')) return fallback.request(req);
      const res = app.inject({
        method: req.method,
        url: req.url.slice(publicUrl.length),
        headers: req.headers,
        payload: req.body,
      });
      const r = await withTimeout(Promise.resolve(res), req.timeoutMs ?? 10_000, req.url);
      return { status: r.statusCode, headers: r.headers as Record<string, string>, body: r.body };
    },
  };
}

/** Simulators play the providers: public, not rate limited, not part of the API docs. */
async function mountSimulator(app: FastifyInstance, prefix: string, routes: FastifyPluginAsync): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), auth: false, rateLimit: false } as typeof route.config;
    });
    await scope.register(routes);
  }, { prefix });
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const { config, db } = opts;
  const clock = opts.clock ?? systemClock;
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel, redact: ['req.headers.authorization'] },
    bodyLimit: config.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true } },
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App;

  const http = opts.http ?? localFirstClient(app, config.publicUrl, fetchHttpClient);
  // Sandbox mode: every provider points at its simulator mounted here. (Per-tenant credentials,
  // encrypted at rest, come with the real provider integrations.)
  const vnpayTerminal = { tmnCode: 'FGSBX001', secret: `${config.sandboxSecret}:vnpay`, ipnUrl: `${config.publicUrl}/v1/notify/vnpay` };
  const derive = (what: string) => crypto.createHash('sha256').update(`${config.sandboxSecret}:${what}`).digest('hex');
  const zalopayApp = { appId: 2553, key1: derive('zalopay-key1').slice(0, 32), key2: derive('zalopay-key2').slice(0, 32) };
  const momoPartner = { partnerCode: 'FGSANDBOXMOMO', accessKey: derive('momo-access').slice(0, 16), secretKey: derive('momo-secret').slice(0, 32) };
  const credentials: CredentialResolver = async (provider): Promise<Record<string, string>> => {
    if (provider.startsWith('sandbox')) {
      return { secret: config.sandboxSecret, merchant: SANDBOX_MERCHANT, ...(config.sandboxUrl ? { base_url: config.sandboxUrl } : {}) };
    }
    if (provider === 'vnpay' && config.sandbox) {
      return {
        tmn_code: vnpayTerminal.tmnCode, hash_secret: vnpayTerminal.secret,
        pay_url: `${config.publicUrl}/sandbox/vnpay/paymentv2/vpcpay.html`, api_url: `${config.publicUrl}/sandbox/vnpay/merchant_webapi/api/transaction`,
      };
    }
    if (provider === 'zalopay' && config.sandbox) {
      return { app_id: String(zalopayApp.appId), key1: zalopayApp.key1, key2: zalopayApp.key2, endpoint: `${config.publicUrl}/sandbox/zalopay` };
    }
    if (provider === 'momo' && config.sandbox) {
      return { partner_code: momoPartner.partnerCode, access_key: momoPartner.accessKey, secret_key: momoPartner.secretKey, endpoint: `${config.publicUrl}/sandbox/momo` };
    }
    return {};
  };
  const providers = new ProviderRegistry({ http, clock, publicUrl: config.publicUrl, credentials });
  if (config.sandbox) {
    providers.register(sandboxAdapter);
    providers.register(sandboxApiAdapter);
    providers.register(vnpayAdapter);
    providers.register(momoAdapter);
    providers.register(zalopayAdapter);
  }

  if (!config.masterKey) throw new Error('no master key: set FEEGATE_MASTER_KEY (server.ts makes a development one)');
  const deps: Deps = {
    db, clock, config, providers, keys: new ApiKeyResolver(db), metrics: new Metrics(),
    secrets: new SecretBox(config.masterKey),
    handlers: new Map([...webhookHandlers, ...(opts.extraHandlers ?? [])].map((h) => [h.kind, h])),
  };
  app.decorate('deps', deps);

  await app.register(errorHandlerPlugin);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'feegate API',
        version: '0.1.0',
        description: 'Cashless payment and e-receipt gateway for Vietnamese public fees and tuition. '
          + 'Authenticate with `Authorization: Bearer fg_test_...`. Send `Idempotency-Key` on every POST. '
          + 'Errors are `{ "error": { "code", "message", "details" } }` with stable codes.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'fg_live_… or fg_test_…' } } },
      security: [{ apiKey: [] }],
    },
  });
  app.addSchema(ErrorBody);
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  await app.register(authPlugin);
  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: config.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => req.principal?.keyId ?? req.ip,
    errorResponseBuilder: (_req, ctx) => new FeegateError('FEEGATE_ERR_RATE_LIMITED', `More than ${ctx.max} requests a minute; retry in ${ctx.after}`),
  });
  await app.register(idempotencyPlugin);

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-request-id', req.id);
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  const open = { auth: false, rateLimit: false } as const;
  app.get('/livez', { config: open, schema: { tags: ['ops'], summary: 'Liveness: the process answers (no database call)' } }, async () => ({ status: 'ok' }));
  app.get('/healthz', { config: open, schema: { tags: ['ops'], summary: 'Readiness: the database answers' } }, async (_req, reply) => {
    try {
      await db.raw('select 1');
      return { status: 'ok' };
    } catch {
      return reply.code(503).send(new FeegateError('FEEGATE_ERR_SERVICE_UNAVAILABLE', 'The database does not answer').toJSON());
    }
  });
  app.get('/metrics', { config: open, schema: { tags: ['ops'], summary: 'Prometheus metrics' } }, async (_req, reply) =>
    reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()));
  app.get('/openapi.json', { config: open, schema: { hide: true } }, async () => app.swagger());

  await app.register(billRoutes);
  await app.register(paymentRoutes);
  await app.register(tenantRoutes);
  await app.register(webhookRoutes);
  await app.register(callbackRoutes);

  if (config.sandbox) {
    const sim = new SandboxSimulator({ secret: config.sandboxSecret, http, clock, publicUrl: config.publicUrl });
    app.sandbox = sim;
    await mountSimulator(app, '/sandbox', simulatorRoutes(sim));
    app.vnpay = new VnpaySimulator({ terminal: vnpayTerminal, http, clock });
    await mountSimulator(app, '/sandbox/vnpay', vnpaySimulatorRoutes(app.vnpay));
    app.momo = new MomoSimulator({ partner: momoPartner, http, clock, publicUrl: config.publicUrl });
    await mountSimulator(app, '/sandbox/momo', momoSimulatorRoutes(app.momo));
    app.zalopay = new ZalopaySimulator({ app: zalopayApp, http, clock, publicUrl: config.publicUrl });
    await mountSimulator(app, '/sandbox/zalopay', zalopaySimulatorRoutes(app.zalopay));
  }
  await app.ready();
  return app;
}
