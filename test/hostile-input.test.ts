/**
 * A generated attack on the whole API: every operation in /openapi.json x every field of its body,
 * query string and path x a table of hostile values (NUL, lone surrogates, control characters,
 * names of only spaces or zero-width characters, dates PostgreSQL cannot hold, tampered cursors,
 * sums that overflow, wrong types, over-long and undecodable path segments). Each request must get a
 * 4xx with a FEEGATE_ERR_* code declared in gateway/errors.ts, at that code's status, and leave every
 * table of the database as it was. Fields come from the schemas, so a new route or field is attacked
 * without editing this file; a new route with a body needs a valid baseline body below (the test says so).
 * Malformed HTTP (bad header bytes, broken framing, huge headers) goes over a real socket at the end.
 */
import net from 'node:net';
import { eachDb, snapshot } from './helpers/db.js';
import { billAndPayment, client, makeApp, payAt, seedTenant, type CallResult } from './helpers/app.js';
import { ERRORS } from '../gateway/errors.js';
import type { App } from '../gateway/app.js';

type Schema = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Path = (string | number)[];
/** A hostile value; `raw` is for query strings and paths, already percent-encoded. */
interface Hostile {
  label: string;
  value?: unknown;
  raw?: string;
  /** why a 2xx is acceptable (no 5xx, no write still are) */ mayPass?: string;
}

const h = (label: string, value: unknown): Hostile => ({ label, value });
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const UUID = '6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f';
const T = '2026-03-10T02:00:00.000Z';

/** Text no string field may hold, whatever its schema. */
const BAD_TEXT: Hostile[] = [
  h('NUL', '\u0000'),
  h('NUL inside', 'ab\u0000cd'),
  h('lone high surrogate', '\ud800'),
  h('lone low surrogate', 'x\udfffy'),
  h('reversed surrogate pair', '\udc00\ud800'),
  h('BEL', 'a\u0007b'),
  h('ESC sequence', '\u001b[2Jx'),
  h('DEL', 'a\u007f'),
  h('C1 NEL', 'a\u0085b'),
  h('noncharacter U+FFFE', 'a\ufffe'),
  h('vertical tab', 'a\u000bb'),
  h('20,000 characters', 'x'.repeat(20_000)),
];
/** Names, codes, references and keys need a visible character. */
const BAD_NAME: Hostile[] = [
  h('empty', ''),
  h('spaces only', '   '),
  h('zero-width only', '\u200b\u200c\u200d'),
  h('NBSP, BOM and word joiner only', '\u00a0\ufeff\u2060'),
  h('tab', 'a\tb'),
  h('newline', 'a\nb'),
];
const BAD_DATE: Hostile[] = [
  h('year 0000', '0000-01-01'),
  h('negative year', '-0001-01-01'),
  h('five-digit year', '10000-01-01'),
  h('year 99999', '99999-12-31'),
  h('30 February', '2026-02-30'),
  h('month 13', '2026-13-01'),
  h('a timestamp', '2026-03-10T00:00:00Z'),
  h('before 2000', '1899-12-31'),
];
const WRONG_TYPE_FOR_STRING: Hostile[] = [h('number', 12), h('boolean', true), h('null', null), h('object', {}), h('array', ['x'])];
const BAD_NUMBER: Hostile[] = [
  h('negative', -1),
  h('fraction', 0.5),
  h('1e308', 1e308),
  h('2^63', 2 ** 63),
  h('-2^63', -(2 ** 63)),
  h('2^53 + 2', 2 ** 53 + 2),
  h('numeric string', '1000'),
  h('null', null),
  h('boolean', true),
  h('object', {}),
  h('NUL string', '\u0000'),
];
const BAD_BOOLEAN: Hostile[] = [h('string', 'true'), h('number', 1), h('null', null), h('object', {}), h('NUL string', '\u0000')];
const BAD_OBJECT: Hostile[] = [h('string', 'x'), h('array', []), h('number', 1), h('null', null)];
const BAD_ARRAY: Hostile[] = [h('string', 'x'), h('object', {}), h('null inside', [null]), h('NUL string inside', ['\u0000'])];
const BAD_KEY: Hostile[] = [
  h('empty key', ''),
  h('41-character key', 'k'.repeat(41)),
  h('NUL key', 'a\u0000'),
  h('lone-surrogate key', '\ud800'),
  h('space key', ' '),
  h('zero-width key', '\u200b'),
  h('control key', 'a\u0001'),
];

/** In a URL: percent-encoded bytes no decoder may turn into text we store or cast. */
// fastify's query parser keeps an escape that does not decode as its literal text ("%ED%A0%80"):
// plain safe text that matches nothing, so a filter may answer an empty page.
const LITERAL = 'kept literally by the query parser';
const BAD_QUERY: Hostile[] = [
  { label: 'NUL', raw: '%00' },
  { label: 'NUL inside', raw: 'ab%00cd' },
  { label: 'lone surrogate (CESU bytes)', raw: '%ED%A0%80', mayPass: LITERAL },
  { label: 'invalid UTF-8', raw: '%C3%28', mayPass: LITERAL },
  { label: 'overlong NUL', raw: '%C0%80', mayPass: LITERAL },
  { label: 'BEL', raw: 'a%07' },
  { label: 'ESC', raw: '%1B%5B2J' },
  { label: 'C1', raw: '%C2%85' },
  { label: 'broken escape', raw: '%E0%A4%A', mayPass: LITERAL },
  { label: '5,000 characters', raw: 'x'.repeat(5000) },
];
const BAD_CURSOR: Hostile[] = [
  { label: 'not base64url', raw: '!!!' },
  { label: 'not JSON', raw: b64('nope') },
  { label: 'JSON null', raw: b64('null') },
  { label: 'JSON array', raw: b64([T, UUID]) },
  { label: 'id not a UUID', raw: b64({ t: T, id: 'abc' }) },
  { label: 'id SQL', raw: b64({ t: T, id: "' OR 1=1 --" }) },
  { label: 'id a number', raw: b64({ t: T, id: 7 }) },
  { label: 't a number', raw: b64({ t: 1773108000000, id: UUID }) },
  { label: 't year 0000', raw: b64({ t: '0000-01-01T00:00:00.000Z', id: UUID }) },
  { label: 't beyond timestamptz', raw: b64({ t: '+275760-09-13T00:00:00.000Z', id: UUID }) },
  { label: 't before 4713 BC', raw: b64({ t: '-271821-04-20T00:00:00.000Z', id: UUID }) },
  { label: 't 30 February', raw: b64({ t: '2026-02-30T00:00:00.000Z', id: UUID }) },
  { label: 't loose date', raw: b64({ t: 'March 1', id: UUID }) },
  { label: 't with NUL', raw: b64({ t: `${T}\u0000`, id: UUID }) },
  { label: 'extra key', raw: b64({ t: T, id: UUID, x: 1 }) },
  { label: '300 characters', raw: 'A'.repeat(300) },
];
const BAD_PATH: Hostile[] = [
  { label: 'NUL', raw: '%00' },
  { label: 'lone surrogate (CESU bytes)', raw: '%ED%A0%80' },
  { label: 'invalid UTF-8', raw: '%C3%28' },
  { label: 'broken escape', raw: '%E0%A4%A' },
  { label: 'control', raw: 'a%07b' },
  { label: 'not an id', raw: 'not-an-id' },
  { label: '101 characters (above maxParamLength)', raw: 'a'.repeat(101) },
  { label: '5,000 characters', raw: '9'.repeat(5000) },
  { label: 'dot segments', raw: '..%2F..%2Fetc' },
];

/** A valid body per operation with one: each hostile request is this with one field replaced. */
function baselines(f: { billId: string; paygov?: Record<string, string> }): Record<string, unknown> {
  return {
    'POST /v1/bills': {
      external_ref: 'HOSTILE-BASE',
      kind: 'procedure_fee',
      dossier_code: 'G01.123',
      procedure_code: '1.001612',
      student_code: 'HS01',
      school_year: '2026-2027',
      term: 'HK1',
      description: 'Lệ phí',
      total_amount: 58_000,
      due_date: '2026-12-31',
      allow_partial: false,
      payer: { name: 'Trần Thị Bình', id_number: '001190012345', phone: '0912345678', email: 'binh@example.vn' },
      items: [
        { fee_code: 'LP01', name: 'Lệ phí khai sinh', amount: 50_000, legal_basis: 'TT 85/2019' },
        { fee_code: 'LP02', name: 'Phí sao y', amount: 8_000 },
      ],
      metadata: { portal: 'dvc' },
    },
    'POST /v1/payments': { bill_id: f.billId, provider: 'sandbox', amount: 58_000, return_url: 'https://portal.example.vn/back' },
    'POST /v1/payments/{id}/refunds': { amount: 1_000, reason: 'trả lại' },
    'POST /v1/api-keys': { role: 'integration', label: 'portal' },
    'POST /v1/webhook-endpoints': { url: 'https://hooks.example.vn/feegate', events: ['*'], description: 'portal' },
    'POST /v1/receipts/verify': '<BLai/>',
    'POST /v1/receipt_series': { template_symbol: '01BLP0-001', series_letters: 'AA' },
    'POST /v1/provider-credentials/{provider}': { credentials: f.paygov ?? {} },
  };
}

/**
 * Sampled, not brute-forced, to keep the run short: every string field gets NUL and a lone
 * surrogate, and the next SAMPLE of the other text and type attacks in turn, so across the ~50
 * string fields each attack is used on many fields (the order is fixed: a failure reproduces).
 */
const SAMPLE = 6;
const ROTATING = [...BAD_TEXT.filter((_, i) => i !== 0 && i !== 2), ...WRONG_TYPE_FOR_STRING];
let turn = 0;
function sampleText(): Hostile[] {
  const picked = Array.from({ length: SAMPLE }, (_, i) => ROTATING[(turn + i) % ROTATING.length]!);
  turn += SAMPLE;
  return [BAD_TEXT[0]!, BAD_TEXT[2]!, ...picked];
}

/** Every leaf and container of a schema, with its path and the hostile values that fit its kind. */
function fieldsOf(schema: Schema | undefined, base: Path = []): { path: Path; values: Hostile[]; key?: boolean }[] {
  if (!schema) return [];
  const out: { path: Path; values: Hostile[]; key?: boolean }[] = [];
  const type = schema.type ?? (schema.anyOf ? 'anyOf' : undefined);
  if (type === 'object') {
    if (base.length) out.push({ path: base, values: BAD_OBJECT });
    for (const [name, sub] of Object.entries<Schema>(schema.properties ?? {})) out.push(...fieldsOf(sub, [...base, name]));
    const values = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : Object.values<Schema>(schema.patternProperties ?? {})[0];
    if (values) {
      out.push({ path: base, values: BAD_KEY, key: true });
      out.push(...fieldsOf(values, [...base, 'k']));
    }
  } else if (type === 'array') {
    const copies = schema.maxItems ?? 100;
    out.push({
      path: base,
      values: [...BAD_ARRAY, { label: `${copies} copies of the first item at every maximum`, value: { maxedCopies: copies, items: schema.items } }],
    });
    out.push(...fieldsOf(schema.items, [...base, 0]));
  } else if (type === 'string') {
    const f = schema.format;
    out.push({ path: base, values: [...sampleText(), ...(f === 'feegate-name' ? BAD_NAME : []), ...(f === 'feegate-date' ? BAD_DATE : [])] });
  } else if (type === 'integer' || type === 'number') {
    out.push({ path: base, values: BAD_NUMBER });
  } else if (type === 'boolean') {
    out.push({ path: base, values: BAD_BOOLEAN });
  } else if (type === 'anyOf') {
    out.push({ path: base, values: [...BAD_TEXT.slice(0, 4), ...WRONG_TYPE_FOR_STRING] }); // enums: none of these is a member
  }
  return out;
}

/** Each integer of a schema at its maximum (for the "overflowing sum" attack). */
function maxed(schema: Schema, sample: unknown): unknown {
  if (schema?.type === 'integer') return schema.maximum ?? Number.MAX_SAFE_INTEGER;
  if (schema?.type === 'object' && sample && typeof sample === 'object') {
    return Object.fromEntries(Object.entries(sample).map(([k, v]) => [k, maxed(schema.properties?.[k], v)]));
  }
  return sample;
}

function withValue(baseline: unknown, path: Path, hostile: Hostile, key = false): unknown {
  if (path.length === 0 && !key) return hostile.value;
  const root = structuredClone(baseline ?? {}) as Record<string | number, unknown>;
  let node: Record<string | number, unknown> = root;
  for (const [i, seg] of path.entries()) {
    if (i === path.length - 1 && !key) break;
    if (node[seg] === null || typeof node[seg] !== 'object') node[seg] = typeof path[i + 1] === 'number' ? [] : {};
    node = node[seg] as Record<string | number, unknown>;
  }
  if (key) {
    node[hostile.value as string] = 'v';
    return root;
  }
  const last = path.at(-1)!;
  const v = hostile.value as { maxedCopies?: number; items?: Schema } | undefined;
  node[last] =
    v && typeof v === 'object' && 'maxedCopies' in v
      ? Array.from({ length: v.maxedCopies! }, () => maxed(v.items!, (node[last] as unknown[] | undefined)?.[0]))
      : hostile.value;
  return root;
}

interface Case {
  what: string;
  method: string;
  url: string;
  body?: string;
  contentType?: string;
  mayPass?: string;
}

function casesFor(method: string, route: string, op: Schema, baseline: unknown, pathValue: (name: string) => string): Case[] {
  const params = (op.parameters ?? []) as { in: string; name: string; schema?: Schema }[];
  const url = (over: Record<string, string> = {}) => route.replace(/\{(\w+)\}/g, (_m, n: string) => over[n] ?? pathValue(n));
  const M = method.toUpperCase();
  const json = (body: unknown) => (body === undefined ? undefined : JSON.stringify(body));
  const baseBody = json(baseline);
  const out: Case[] = [];
  for (const p of params.filter((x) => x.in === 'path')) {
    for (const v of BAD_PATH) out.push({ what: `path ${p.name} = ${v.label}`, method: M, url: url({ [p.name]: v.raw! }), body: baseBody });
  }
  for (const p of params.filter((x) => x.in === 'query')) {
    const values = p.name === 'cursor' ? [...BAD_QUERY, ...BAD_CURSOR] : BAD_QUERY;
    for (const v of values) out.push({ what: `query ${p.name} = ${v.label}`, method: M, url: `${url()}?${p.name}=${v.raw}`, mayPass: v.mayPass });
    out.push({ what: `query ${p.name} repeated`, method: M, url: `${url()}?${p.name}=a&${p.name}=b` });
  }
  const schema = op.requestBody?.content?.['application/json']?.schema as Schema | undefined;
  if (schema) {
    for (const f of fieldsOf(schema)) {
      for (const v of f.values) {
        const at = f.path.join('.') || '(body)';
        out.push({ what: `body ${at}${f.key ? ' key' : ''} = ${v.label}`, method: M, url: url(), body: json(withValue(baseline, f.path, v, f.key)) });
      }
    }
    if (schema.type === 'string') {
      // As raw bytes: a lone surrogate cannot travel in UTF-8 (it arrives as U+FFFD) and a long
      // well-formed document is a valid request (its report says "not signed"), so those stay JSON-only.
      for (const v of BAD_TEXT.filter((x) => /^[\s\S]{1,20}$/.test(x.value as string) && !/\p{Cs}/u.test(x.value as string))) {
        out.push({ what: `raw XML body = ${v.label}`, method: M, url: url(), body: `<BLai>${v.value as string}</BLai>`, contentType: 'application/xml' });
      }
    }
    out.push({ what: 'body nested 10,000 levels', method: M, url: url(), body: '['.repeat(10_000) + ']'.repeat(10_000) });
  }
  if (!params.length && !schema) {
    // Nothing declared (health, metrics, provider callbacks): hostile text in an undeclared query and body.
    // An undeclared parameter is never read, so a 2xx is fine there: no 5xx and no write still hold.
    for (const v of BAD_QUERY) {
      out.push({
        what: `undeclared query = ${v.label}`,
        method: M,
        url: `${url()}?q=${v.raw}`,
        body: M === 'POST' ? JSON.stringify({ q: '\u0000' }) : undefined,
        mayPass: 'undeclared',
      });
    }
  }
  return out;
}

async function send(app: App, key: string, c: Case): Promise<CallResult> {
  const res = await app.inject({
    method: c.method as 'GET' | 'POST',
    url: c.url,
    headers: { authorization: `Bearer ${key}`, ...(c.body !== undefined ? { 'content-type': c.contentType ?? 'application/json' } : {}) },
    payload: c.body,
  });
  let body: unknown = res.body;
  try {
    body = JSON.parse(res.body);
  } catch {
    /* not JSON: a provider's own format or a page */
  }
  return { status: res.statusCode, body, headers: res.headers };
}

/** What a refusal must be: a 4xx, not for want of a role, with a declared code at its own status. */
function problem(res: CallResult, declaredOnly: boolean): string | null {
  const code = (res.body as { error?: { code?: string } } | null)?.error?.code;
  if (res.status >= 500) return `HTTP ${res.status} ${code ?? JSON.stringify(res.body).slice(0, 120)}`;
  if (declaredOnly) return null; // provider-facing routes answer in the provider's format
  if (res.status < 400) return `accepted: HTTP ${res.status}`;
  if (res.status === 401 || res.status === 403) return `refused for the key, not the value: ${code}`;
  if (!code || !(code in ERRORS)) return `HTTP ${res.status} without a declared code: ${JSON.stringify(res.body).slice(0, 120)}`;
  if (ERRORS[code as keyof typeof ERRORS].status !== res.status) return `${code} answered with HTTP ${res.status}`;
  return null;
}

eachDb('hostile input: every route x every field x hostile values gets a declared 4xx and writes nothing', async (t, { db }) => {
  const env = await makeApp(db, { rateLimitPerMinute: 1_000_000 });
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.admin);
  // Real objects behind the path parameters, so a value that passes the schema reaches the handler.
  const paid = await billAndPayment(env.app, ten.keys.integration);
  await payAt(env.sim, paid.payment, 'success');
  const open = (
    await client(env.app, ten.keys.integration).post('/v1/bills', { ...(baselines({ billId: '' })['POST /v1/bills'] as object), external_ref: 'HOSTILE-OPEN' })
  ).body;
  t.equal(typeof open.id, 'string', 'an open bill to pay');
  const key = (await api.post('/v1/api-keys', { role: 'integration' })).body;
  const hook = await api.post('/v1/webhook-endpoints', { url: 'https://hooks.example.vn/x', events: ['*'] });
  const event = (await api.get('/v1/events?limit=1')).body.data?.[0];
  const ids: Record<string, string> = {
    '/v1/bills/': paid.bill.id,
    '/v1/payments/': paid.payment.id,
    '/v1/api-keys/': key.id,
    '/v1/webhook-endpoints/': hook.body?.id ?? UUID,
    '/v1/events/': event?.id ?? UUID,
    '/v1/outbox/': '1',
    '/v1/provider-credentials/': 'paygov',
  };
  const pathValue = (route: string) => () => Object.entries(ids).find(([prefix]) => route.startsWith(prefix))?.[1] ?? UUID;

  const spec = (await api.get('/openapi.json')).body as { paths: Record<string, Record<string, Schema>> };
  const pg = env.app.simulators!.paygov!.opts.partner;
  const bases = baselines({ billId: open.id, paygov: { partner_code: pg.partnerCode, secret: pg.secret, endpoint: 'http://feegate.test/sandbox/paygov' } });
  let total = 0;
  turn = 0; // the same sample on both engines
  let before = await snapshot(db);
  t.ok(
    Object.keys(before).some((k) => k === 'outbox') && 'events' in before && 'webhook_endpoints' in before && 'receipts' in before,
    'the snapshot holds every table, outbox, events, webhooks and receipts included',
  );
  for (const [route, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const name = `${method.toUpperCase()} ${route}`;
      const hasBody = Boolean(op.requestBody?.content?.['application/json']);
      if (hasBody && !(name in bases)) {
        t.fail(`${name} has a request body but no baseline in this test: add one`);
        continue;
      }
      const provider = /^\/v1\/(notify|return)\//.test(route);
      const cases = casesFor(method, route, op, bases[name], (n) => pathValue(route.replace(`{${n}}`, ''))());
      const failures: string[] = [];
      for (const c of cases) {
        const why = problem(await send(env.app, ten.keys.admin, c), provider || c.mayPass !== undefined);
        if (why) failures.push(`${c.what}: ${why}`);
      }
      total += cases.length;
      const after = await snapshot(db);
      const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
      t.same(
        { failures: failures.slice(0, 20), changed },
        { failures: [], changed: [] },
        `${name}: ${cases.length} hostile requests, each refused, nothing written`,
      );
      before = after;
    }
  }
  t.ok(total > 1000, `${total} hostile requests in all`);

  // Each baseline is accepted as it is: every refusal above was for its one hostile value.
  for (const [name, body] of Object.entries(bases)) {
    const [method, route] = name.split(' ') as [string, string];
    const res = await send(env.app, ten.keys.admin, {
      what: 'baseline',
      method,
      url: route.replace(/\{(\w+)\}/g, (_m, n: string) => pathValue(route.replace(`{${n}}`, ''))()),
      body: JSON.stringify(body),
    });
    t.ok(
      res.status >= 200 && res.status < 300,
      `${name}: the baseline itself is accepted (HTTP ${res.status} ${res.status >= 300 ? JSON.stringify(res.body).slice(0, 200) : ''})`,
    );
  }
});

/** Raw bytes on a socket: what Node's HTTP parser refuses never reaches a route. */
function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let data = '';
    s.setEncoding('latin1');
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(data));
    s.on('close', () => resolve(data));
    s.on('error', reject);
    s.setTimeout(5000, () => {
      s.destroy();
      resolve(data);
    });
  });
}

eachDb('malformed HTTP and URLs get a JSON 4xx with a stable code', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  await env.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (env.app.server.address() as net.AddressInfo).port;
  const before = await snapshot(db);
  const auth = `Authorization: Bearer ${ten.keys.admin}\r\n`;
  const cases: [string, string, number, string][] = [
    ['NUL in a header value', `GET /v1/bills HTTP/1.1\r\nHost: x\r\n${auth}X-Note: a\u0000b\r\n\r\n`, 400, 'FEEGATE_ERR_MALFORMED_REQUEST'],
    ['header line without a colon', `GET /v1/bills HTTP/1.1\r\nHost: x\r\n${auth}garbage\r\n\r\n`, 400, 'FEEGATE_ERR_MALFORMED_REQUEST'],
    ['space in a header name', `GET /v1/bills HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n`, 400, 'FEEGATE_ERR_MALFORMED_REQUEST'],
    ['broken request line', `GET\r\n\r\n`, 400, 'FEEGATE_ERR_MALFORMED_REQUEST'],
    [
      'two Content-Lengths',
      `POST /v1/bills HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`,
      400,
      'FEEGATE_ERR_MALFORMED_REQUEST',
    ],
    [
      'bad chunk size',
      `POST /v1/bills HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      400,
      'FEEGATE_ERR_MALFORMED_REQUEST',
    ],
    ['headers above 16 KiB', `GET /v1/bills HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'FEEGATE_ERR_HEADERS_TOO_LARGE'],
    [
      'path parameter above maxParamLength',
      `GET /v1/bills/${'a'.repeat(200)} HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`,
      400,
      'FEEGATE_ERR_URL_INVALID',
    ],
    ['undecodable path', `GET /v1/bills/%E0%A4%A HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`, 400, 'FEEGATE_ERR_URL_INVALID'],
  ];
  for (const [what, bytes, status, code] of cases) {
    const res = await rawRequest(port, bytes);
    const [head, ...rest] = res.split('\r\n\r\n');
    t.match(head ?? '', new RegExp(`^HTTP/1\\.1 ${status} `), `${what}: HTTP ${status}`);
    t.match(head ?? '', /content-type: application\/json/i, `${what}: JSON`);
    let parsed: { error?: { code?: string } } = {};
    try {
      parsed = JSON.parse(rest.join('\r\n\r\n'));
    } catch {
      /* asserted below */
    }
    t.equal(parsed.error?.code, code, `${what}: ${code}`);
  }
  t.same(await snapshot(db), before, 'nothing was written');
});
