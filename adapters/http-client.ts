/**
 * Outbound HTTP for adapters, with a timeout on every call. A timeout or a broken connection is
 * reported as such (HttpTimeoutError / HttpNetworkError) so adapters map it to `unknown`, never to
 * `failed`: the provider may have acted on a request whose answer we did not get.
 * The gateway's real client is nodeHttpClient behind the URL guard (url-guard.ts), whose DNS
 * lookup checks every address before the socket connects to it.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  /** Read at most this many bytes of the answer (nodeHttpClient; default DEFAULT_MAX_RESPONSE_BYTES). */
  maxResponseBytes?: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The answer was longer than maxResponseBytes: body is its beginning. */
  truncated?: boolean;
}

export interface HttpClient {
  request(req: HttpRequest): Promise<HttpResponse>;
}

export class HttpTimeoutError extends Error {
  constructor(url: string, ms: number) {
    super(`no answer from ${url} within ${ms} ms`);
    this.name = 'HttpTimeoutError';
  }
}

export class HttpNetworkError extends Error {
  constructor(url: string, cause: unknown) {
    super(`request to ${url} failed: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'HttpNetworkError';
  }
}

export const DEFAULT_TIMEOUT_MS = 10_000;
/** Provider answers are small JSON; nothing we call needs more, and a hostile server cannot fill memory. */
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * Node's http/https with a deadline on the whole exchange, an answer read up to a byte limit, no
 * redirects followed, and an optional `lookup` (the URL guard's) that decides which address the
 * socket connects to. Each client has its own keep-alive agents, so a socket opened by another
 * client (one without the guard) is never reused here.
 */
export function nodeHttpClient(opts: { lookup?: LookupFunction } = {}): HttpClient {
  const agentOptions = { keepAlive: true, ...(opts.lookup ? { lookup: opts.lookup } : {}) };
  const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) };
  return {
    request(req) {
      return new Promise<HttpResponse>((resolve, reject) => {
        const ms = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
        const max = req.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
        let url: URL;
        try {
          url = new URL(req.url);
        } catch (err) {
          reject(new HttpNetworkError(req.url, err));
          return;
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:') {
          reject(new HttpNetworkError(req.url, new Error(`${url.protocol} is not http or https`)));
          return;
        }
        const body = req.body === undefined ? undefined : Buffer.from(req.body, 'utf8');
        let settled = false;
        const settle = (fn: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          fn();
        };
        const client = url.protocol === 'https:' ? https : http;
        const r = client.request(
          url,
          {
            method: req.method,
            headers: { ...req.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
            agent: agents[url.protocol],
            ...(opts.lookup ? { lookup: opts.lookup } : {}),
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            const done = (truncated: boolean) =>
              settle(() => {
                const headers: Record<string, string> = {};
                for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
                resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8'), ...(truncated ? { truncated } : {}) });
              });
            res.on('data', (chunk: Buffer) => {
              if (settled) return;
              if (size + chunk.length > max) {
                chunks.push(chunk.subarray(0, max - size));
                size = max;
                done(true);
                res.destroy();
                return;
              }
              chunks.push(chunk);
              size += chunk.length;
            });
            res.on('end', () => done(false));
            res.on('error', (err) => settle(() => reject(new HttpNetworkError(req.url, err))));
            res.on('aborted', () => settle(() => reject(new HttpNetworkError(req.url, new Error('the connection closed before the answer ended')))));
          },
        );
        // A refusal from the guard's lookup arrives here as it was thrown (an HttpNetworkError subclass).
        r.on('error', (err) => settle(() => reject(err instanceof HttpNetworkError ? err : new HttpNetworkError(req.url, err))));
        const timer = setTimeout(() => {
          settle(() => reject(new HttpTimeoutError(req.url, ms)));
          r.destroy();
        }, ms);
        r.end(body);
      });
    },
  };
}

/** The real client: Node's fetch (undici). */
export const fetchHttpClient: HttpClient = {
  async request(req) {
    const ms = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let res: Response;
    try {
      res = await fetch(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: AbortSignal.timeout(ms),
        redirect: 'manual',
      });
    } catch (err) {
      const name = (err as Error)?.name;
      if (name === 'TimeoutError' || name === 'AbortError') throw new HttpTimeoutError(req.url, ms);
      throw new HttpNetworkError(req.url, err);
    }
    let body: string;
    try {
      body = await res.text();
    } catch (err) {
      throw new HttpNetworkError(req.url, err);
    }
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    return { status: res.status, headers, body };
  },
};

/** Races a promise against a timer; used by in-process clients so they time out like real ones. */
export async function withTimeout<T>(p: Promise<T>, ms: number, url: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HttpTimeoutError(url, ms)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
