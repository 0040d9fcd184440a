/**
 * Outbound HTTP for adapters, with a timeout on every call. A timeout or a broken connection is
 * reported as such (HttpTimeoutError / HttpNetworkError) so adapters map it to `unknown`, never to
 * `failed`: the provider may have acted on a request whose answer we did not get.
 */
export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
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
