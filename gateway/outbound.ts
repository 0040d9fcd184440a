/**
 * Outbound HTTP, one client per kind of caller, each behind the URL guard (adapters/url-guard.ts):
 * - providers: the adapters calling a provider at a URL a unit stored (`endpoint`, `api_url`) or
 *   the sandbox credentials. In sandbox mode the gateway's own simulators are exempt from the
 *   address checks (`<PUBLIC_URL>/sandbox/…`, `<FEEGATE_SANDBOX_URL>/sandbox/…`, but never their
 *   `/control/` API, which steers payments), and the mounted ones are served in-process (no
 *   socket: how tests and `npm start` reach them).
 * - webhooks: merchant endpoints. Guarded, NEVER served in-process, never the gateway's own host:
 *   a webhook aimed at our own routes once completed a sandbox payment.
 * - simulators: the mounted simulators playing the providers. Their callbacks to our
 *   `/v1/notify/` routes are in-process; anything else (a notify URL an anonymous caller gave the
 *   public simulator) is guarded like a webhook.
 * http:// is allowed in sandbox mode only; the operator's FEEGATE_ALLOWED_PRIVATE_HOSTS applies to all.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { withTimeout, type HttpClient } from '../adapters/http-client.js';
import { UrlRefusedError, checkUrl, guardedHttpClient, type Resolver, type UrlPolicy } from '../adapters/url-guard.js';
import { FeegateError } from './errors.js';

export interface Outbound {
  /** What a unit's provider URLs are checked against, at registration and at call time. */
  providerPolicy: UrlPolicy;
  /** What webhook endpoint URLs are checked against, at registration and at delivery. */
  webhookPolicy: UrlPolicy;
  providers: HttpClient;
  webhooks: HttpClient;
  simulators: HttpClient;
}

/** At registration: a URL the policy refuses is a 400 FEEGATE_ERR_URL_NOT_ALLOWED naming the field and why. */
export function assertUrlAllowed(policy: UrlPolicy, field: string, value: string): void {
  try {
    checkUrl(value, policy);
  } catch (err) {
    if (!(err instanceof UrlRefusedError)) throw err;
    throw new FeegateError('FEEGATE_ERR_URL_NOT_ALLOWED', `${field}: ${err.reason}`, { field, reason: err.reason });
  }
}

/** A URL without its trailing slash, as the WHATWG parser writes it. */
const normal = (url: string) => new URL(url).href.replace(/\/$/, '');

/**
 * A provider-facing route of one of our simulators: under `<base>/sandbox/`, not the control API
 * (it completes payments at will), no percent-encoding in the path (the router decodes it: `%63ontrol`).
 */
function simulatorApi(bases: string[]): (url: URL) => boolean {
  return (url) => bases.some((b) => url.href.startsWith(`${b}/sandbox/`)) && !url.pathname.includes('%') && !/\/control(\/|$)/i.test(url.pathname);
}

/** Calls `serve` accepts are served by our own routes through fastify's inject; others go to `next`. */
function inProcess(app: FastifyInstance, base: string, serve: (url: URL) => boolean, next: HttpClient): HttpClient {
  return {
    async request(req) {
      let url: URL;
      try {
        url = new URL(req.url);
      } catch {
        return next.request(req);
      }
      // The normalised URL decides: `/sandbox/../v1/…` is `/v1/…`, not a simulator.
      if (!serve(url)) return next.request(req);
      const res = app.inject({ method: req.method, url: url.href.slice(base.length), headers: req.headers, payload: req.body });
      const r = await withTimeout(Promise.resolve(res), req.timeoutMs ?? 10_000, req.url);
      return { status: r.statusCode, headers: r.headers as Record<string, string>, body: r.body };
    },
  };
}

export function outbound(app: FastifyInstance, config: Config, o: { transport?: HttpClient; resolve?: Resolver } = {}): Outbound {
  const publicUrl = normal(config.publicUrl);
  const own = [publicUrl, ...(config.sandboxUrl ? [normal(config.sandboxUrl)] : [])];
  const common = {
    allowHttp: config.sandbox,
    allowedPrivateHosts: config.allowedPrivateHosts,
    refusedHosts: [new URL(publicUrl).hostname],
    ...(o.resolve ? { resolve: o.resolve } : {}),
  };
  const providerPolicy: UrlPolicy = { ...common, ...(config.sandbox ? { exempt: simulatorApi(own) } : {}) };
  const webhookPolicy: UrlPolicy = { ...common };
  const guardedProviders = guardedHttpClient(providerPolicy, o.transport);
  const guardedOthers = guardedHttpClient(webhookPolicy, o.transport);
  const mounted = config.sandbox && !config.sandboxUrl;
  return {
    providerPolicy,
    webhookPolicy,
    providers: mounted ? inProcess(app, publicUrl, simulatorApi([publicUrl]), guardedProviders) : guardedProviders,
    webhooks: guardedOthers,
    simulators: inProcess(app, publicUrl, (url) => url.href.startsWith(`${publicUrl}/v1/notify/`), guardedOthers),
  };
}
