/**
 * buildApp(options) → a ready fastify instance: plugins, routes, error handling, the sandbox
 * simulator when sandbox mode is on. No listening, no migrations: server.ts does those.
 */
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
import { Metrics, addMetricsRoute, metricsOnApi } from './http/metrics.js';
import { authPlugin } from './http/auth.js';
import { idempotencyPlugin } from './http/idempotency-hooks.js';
import { clientErrorHandler, errorHandlerPlugin, frameworkErrors } from './http/error-handler.js';
import { requestId } from './http/request-id.js';
import { ErrorBody, SAFE_FORMATS, safeStringsPlugin } from './http/schemas.js';
import { billRoutes } from './bills/routes.js';
import { paymentRoutes } from './payments/routes.js';
import { tenantRoutes } from './tenants/routes.js';
import { callbackRoutes } from './callbacks/routes.js';
import { webhookRoutes } from './webhooks/routes.js';
import { ProviderRegistry, type CredentialResolver } from '../adapters/registry.js';
import { sandboxMode, type Simulators } from '../adapters/sandbox-mode.js';
import type { HttpClient } from '../adapters/http-client.js';
import type { Resolver } from '../adapters/url-guard.js';
import { outbound } from './outbound.js';
import { ChangeFeed } from './db/notify.js';
import { SecretBox } from './secrets/secret-box.js';
import { webhookHandlers } from './webhooks/handlers.js';
import type { OutboxHandler } from './outbox/outbox.js';
import { CertStore } from '../certs/store.js';
import { ProviderCredentials } from './provider-credentials/store.js';
import { providerCredentialRoutes } from './provider-credentials/routes.js';
import { PROVIDER_ADAPTERS } from '../adapters/providers.js';
import { receiptHandlers } from '../receipts/issue.js';
import { receiptRoutes, receiptPublicRoutes } from '../receipts/routes.js';
import { certRoutes, watchCertificates } from '../certs/routes.js';
import './http/fastify-types.js';

export interface AppOptions {
  config: Config;
  db: Db;
  clock?: Clock;
  /**
   * The network client beneath the URL guard (gateway/outbound.ts); by default Node's http with the
   * guard's DNS lookup. A replacement gets only the guard's URL checks, not its address checks.
   */
  http?: HttpClient;
  /** The DNS resolver of outbound calls (tests play a rebinding DNS server with it). */
  resolve?: Resolver;
  logger?: FastifyServerOptions['logger'];
  /** More outbox handlers (tests register their own kinds). */
  extraHandlers?: OutboxHandler[];
}

export interface App extends FastifyInstance {
  /** The provider simulators, in sandbox mode. */
  simulators?: Simulators;
}

/** Simulators play the providers: public, not rate limited, not part of the API docs. */
async function mountSimulator(app: FastifyInstance, prefix: string, routes: FastifyPluginAsync): Promise<void> {
  await app.register(
    async (scope) => {
      scope.addHook('onRoute', (route) => {
        route.config = { ...(route.config ?? {}), auth: false, rateLimit: false } as typeof route.config;
      });
      await scope.register(routes);
    },
    { prefix },
  );
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const { config, db } = opts;
  const clock = opts.clock ?? systemClock;
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel, redact: ['req.headers.authorization'] },
    bodyLimit: config.bodyLimit,
    requestIdHeader: false, // the caller's X-Request-Id only when it is safe (requestId)
    genReqId: requestId,
    trustProxy: config.trustProxy,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true, formats: SAFE_FORMATS } },
    frameworkErrors,
    clientErrorHandler,
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App;

  // Adapters, webhooks and the mounted simulators each call out through their own guarded client.
  const out = outbound(app, config, { transport: opts.http, resolve: opts.resolve });
  // Sandbox mode: every provider also has test credentials pointing at its simulator mounted here.
  const sandbox = config.sandbox
    ? sandboxMode({ secret: config.sandboxSecret, publicUrl: config.publicUrl, http: out.simulators, clock, sandboxUrl: config.sandboxUrl })
    : undefined;
  if (!config.masterKey) throw new Error('no master key: set FEEGATE_MASTER_KEY (server.ts makes a development one)');
  const secrets = new SecretBox(config.masterKey);
  // A unit's own credentials first; in sandbox mode, the simulators' test credentials otherwise.
  // Cache invalidation across processes (LISTEN/NOTIFY): API keys and provider credentials.
  const changes = new ChangeFeed({ db, url: config.databaseUrl, log: app.log });
  await changes.start();
  app.addHook('onClose', () => changes.close());
  const providerCredentials = new ProviderCredentials({ db, clock, secrets, urlPolicy: out.providerPolicy, changes });
  const credentials: CredentialResolver = async (provider, tenantId) =>
    (tenantId ? await providerCredentials.get(tenantId, provider) : null) ?? sandbox?.credentials(provider) ?? {};
  const providers = new ProviderRegistry({ http: out.providers, clock, publicUrl: config.publicUrl, credentials });
  for (const adapter of [...PROVIDER_ADAPTERS, ...(sandbox?.adapters ?? [])]) providers.register(adapter);

  const deps: Deps = {
    db,
    clock,
    config,
    providers,
    keys: new ApiKeyResolver(db, changes),
    metrics: new Metrics(),
    secrets,
    providerCredentials,
    outbound: out,
    certs: new CertStore({ db, clock, config, secrets }),
    handlers: new Map([...webhookHandlers, ...receiptHandlers, ...(opts.extraHandlers ?? [])].map((h) => [h.kind, h])),
  };
  watchCertificates(deps);
  app.decorate('deps', deps);

  await app.register(errorHandlerPlugin);
  await app.register(safeStringsPlugin);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'feegate API',
        version: '0.1.0',
        description:
          'Cashless payment and e-receipt gateway for Vietnamese public fees and tuition. ' +
          'Authenticate with `Authorization: Bearer fg_test_...`. Send `Idempotency-Key` on every POST. ' +
          'Errors are `{ "error": { "code", "message", "details" } }` with stable codes.',
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
  const metricsAccess = metricsOnApi(config);
  if (metricsAccess !== 'off') {
    addMetricsRoute(app, deps.metrics, config.metricsToken, {
      tags: ['ops'],
      summary: `Prometheus metrics${metricsAccess === 'token' ? ' (Authorization: Bearer <metrics token>)' : ''}`,
    });
  }
  app.get('/openapi.json', { config: open, schema: { hide: true } }, async () => app.swagger());

  await app.register(billRoutes);
  await app.register(paymentRoutes);
  await app.register(tenantRoutes);
  await app.register(webhookRoutes);
  await app.register(callbackRoutes);
  await app.register(receiptRoutes);
  await app.register(certRoutes);
  await app.register(providerCredentialRoutes);
  await app.register(receiptPublicRoutes);

  if (sandbox) {
    app.simulators = sandbox.simulators;
    for (const [prefix, routes] of sandbox.mounts) await mountSimulator(app, prefix, routes);
  }
  await app.ready();
  return app;
}
