/** A real HTTP server on loopback that records what it receives and answers as told. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** The status to answer with (default 200), or 'down' to close the connection without answering. */
  answer: number | 'down';
  /** Wait this long before answering (a slow endpoint); 0 by default. */
  delayMs: number;
  /** Requests being answered right now, and the most at once so far. */
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const r: Receiver = { url: '', received: [], answer: 200, delayMs: 0, inFlight: 0, maxInFlight: 0, close: async () => {} };
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    let body = '';
    r.maxInFlight = Math.max(r.maxInFlight, ++r.inFlight);
    res.on('close', () => r.inFlight--);
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const timer = setTimeout(() => answer(req, res, body), r.delayMs);
      timers.add(timer);
      res.on('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
    });
  });
  const answer = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => {
    if (r.answer === 'down') {
      req.socket.destroy();
      return;
    }
    r.received.push({ headers: req.headers, body });
    res.writeHead(r.answer, { 'content-type': 'text/plain' }).end(`answered ${r.answer}`);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  r.close = () =>
    new Promise<void>((resolve) => {
      timers.forEach(clearTimeout);
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}
