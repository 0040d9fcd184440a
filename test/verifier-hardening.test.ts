/**
 * The public receipt verifier against hostile documents and floods (issue 10):
 * - structural limits (elements, depth, attributes) refuse a 120,000-element document before any DOM;
 * - unsigned content beside the signed element (a second DLBLai, an element in DSCKS, an extra
 *   element under the root) is named and makes the receipt invalid; the report says what is signed;
 * - EC and Ed25519 signer certificates are reported as an unsupported algorithm, not a 500;
 * - POST /v1/receipts/verify runs in the worker pool, and a full queue is shed with 503 + Retry-After;
 * - public routes have a per-IP bucket, checked before the body is parsed, separate from API keys;
 * - with trustProxy, X-Forwarded-For decides the bucket; without it, it does not.
 */
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { eachDb } from './helpers/db.js';
import { TEST_DEV_CA_DIR, client, makeApp, seedTenant } from './helpers/app.js';
import { sampleContent } from './bench/receipts.js';
import { loadOrCreateDevCa } from '../certs/dev-ca.js';
import { certBase64, issueLeaf } from '../certs/x509.js';
import { TEMPLATES } from '../receipts/templates.js';
import { signDocument, vnLocalTime } from '../receipts/sign.js';
import { verifyReceiptXml } from '../receipts/verify.js';
import { XML_LIMITS } from '../receipts/xml-limits.js';
import { verifierPool } from '../receipts/verifier-pool.js';
import { loadConfig } from '../gateway/config.js';
import type { Signer } from '../certs/store.js';

const ca = loadOrCreateDevCa(TEST_DEV_CA_DIR);
const anchors = [ca.certPem];

/** A genuine receipt signed by a leaf of the test dev CA (the test app trusts it). */
function genuineReceipt(): string {
  const leaf = issueLeaf({
    ca,
    commonName: 'Trường THCS Dịch Vọng',
    taxCode: '0101234567',
    notBefore: new Date('2026-01-01'),
    notAfter: new Date('2029-01-01'),
  });
  const signer: Signer = {
    certId: 'test',
    certPem: leaf.certPem,
    chainPems: [],
    key: crypto.createPrivateKey(leaf.keyPem),
    subject: 'UID=MST:0101234567, CN=Trường THCS Dịch Vọng, C=VN',
    serial: '1',
    notBefore: new Date('2026-01-01'),
    notAfter: new Date('2029-01-01'),
    keyInfoContent: `<X509Data><X509Certificate>${certBase64(leaf.certPem)}</X509Certificate></X509Data>`,
  };
  const built = TEMPLATES.fee_receipt.build(sampleContent(1));
  return signDocument(built.xml, built, signer, vnLocalTime(new Date('2026-09-15T03:00:00Z')));
}
const xml = genuineReceipt();

/** The three forms of unsigned content from the issue, each with the path the report must name. */
const UNSIGNED: [string, string, string][] = [
  [
    'a second DLBLai with another amount after the signed one',
    xml.replace(
      '</DLBLai>',
      '</DLBLai><DLBLai Id="x"><NDBLai><TToan><TgTTTBSo>9000000</TgTTTBSo><TgTTTBChu>Chín triệu đồng</TgTTTBChu></TToan></NDBLai></DLBLai>',
    ),
    '/BLai/DLBLai[2]',
  ],
  [
    'a DLBLai inside DSCKS',
    xml.replace('<DSCKS>', '<DSCKS><DLBLai><NDBLai><TToan><TgTTTBSo>9000000</TgTTTBSo></TToan></NDBLai></DLBLai>'),
    '/BLai/DSCKS/DLBLai',
  ],
  ['an extra element under the root', xml.replace('</BLai>', '<GhiChu>Đã thu 9.000.000 đồng</GhiChu></BLai>'), '/BLai/GhiChu'],
];

/** A self-signed certificate with an EC or Ed25519 key, made by openssl. */
function opensslCert(kind: 'ec' | 'ed25519'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-alg-'));
  try {
    const keyArgs = kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'ed25519'];
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        ...keyArgs,
        '-nodes',
        '-keyout',
        path.join(dir, 'k.pem'),
        '-out',
        path.join(dir, 'c.pem'),
        '-subj',
        `/C=VN/CN=${kind} signer/UID=MST:0101234567`,
        '-days',
        '3650',
      ],
      { stdio: 'ignore' },
    );
    return fs.readFileSync(path.join(dir, 'c.pem'), 'utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const ALG_METHOD = { ec: 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256', ed25519: 'http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519' };
/** The genuine receipt as another issuer's EC / Ed25519 signer would send it: its certificate, its method. */
const withCert = (kind: 'ec' | 'ed25519', method = true) => {
  const swapped = xml.replace(/<X509Certificate>[^<]*/, `<X509Certificate>${certBase64(opensslCert(kind))}`);
  return method ? swapped.replace(/(<SignatureMethod Algorithm=")[^"]*/, `$1${ALG_METHOD[kind]}`) : swapped;
};

t.test('verifier: a genuine receipt is valid and the report says exactly what is signed', async (t) => {
  const r = verifyReceiptXml(xml, anchors);
  t.ok(r.valid, JSON.stringify(r.problems));
  t.same(r.unsigned, []);
  t.same(r.signed, ['/BLai/DLBLai', '/BLai/DSCKS/TCThu/Signature/Object']);
  const pretty = xml.replace('<DSCKS>', '\n  <DSCKS>').replace('</BLai>', '\n</BLai>\n');
  t.ok(verifyReceiptXml(pretty, anchors).valid, 'whitespace between elements is not content');
});

t.test('verifier: unsigned content beside the signed element is refused and named', async (t) => {
  for (const [what, doc, where] of UNSIGNED) {
    const r = verifyReceiptXml(doc, anchors);
    t.equal(r.signature_valid, true, `${what}: the signature itself still holds`);
    t.equal(r.valid, false, `${what}: the document is not valid`);
    t.same(r.unsigned, [where], `${what}: named as ${where}`);
    t.match(r.problems, [
      { rule: 'VN-BL-008', part: 'document', message: new RegExp(`Unsigned content outside the signature: ${where.replace(/[[\]]/g, '\\$&')}`) },
    ]);
    t.equal(r.document?.total, '1550000', `${what}: the document read is the signed one`);
  }
  const before = xml.replace('<BLai>', '<BLai><DLBLai><NDBLai><TToan><TgTTTBSo>9000000</TgTTTBSo></TToan></NDBLai></DLBLai>');
  const r = verifyReceiptXml(before, anchors);
  t.same(
    [r.valid, r.signature_valid, r.unsigned],
    [false, true, ['/BLai/DLBLai[1]']],
    'an unsigned DLBLai before the signed one: the referenced one is checked, the other named',
  );
  t.same(verifyReceiptXml(xml.replace('</DLBLai>', '</DLBLai><!-- Đã thu 9.000.000 đ -->'), anchors).unsigned, ['/BLai/comment()'], 'a comment');
  t.same(verifyReceiptXml(xml.replace('<BLai>', '<BLai tong="9000000">'), anchors).unsigned, ['/BLai/@tong'], 'an attribute on the root');
  t.same(
    verifyReceiptXml(xml.replace('</Signature>', '<Object><TgTTTBSo>9</TgTTTBSo></Object></Signature>'), anchors).unsigned,
    ['/BLai/DSCKS/TCThu/Signature/Object[2]'],
    'an unreferenced Object inside the Signature',
  );
});

t.test('verifier: EC and Ed25519 certificates are an unsupported algorithm, said so', async (t) => {
  for (const kind of ['ec', 'ed25519'] as const) {
    for (const method of [true, false]) {
      const label = `${kind}${method ? '' : ' (with the RSA method left in SignedInfo)'}`;
      const r = verifyReceiptXml(withCert(kind, method), anchors);
      t.equal(r.valid, false, label);
      const p = r.problems.find((x) => x.rule === 'DSIG-012');
      t.ok(p, `${label}: DSIG-012`);
      t.match(
        p?.message,
        new RegExp(`^Unsupported algorithm: the signer's certificate has an ${kind === 'ec' ? 'EC \\(prime256v1\\)' : 'Ed25519'} key`),
        label,
      );
      t.match(r.signer, { subject: new RegExp(`CN=${kind} signer`), tax_code: '0101234567' }, `${label}: the signer is still named`);
      t.notOk(
        r.problems.some((x) => x.rule === 'DSIG-007' || x.rule === 'DSIG-006'),
        `${label}: no misleading "signature does not match"`,
      );
    }
  }
});

t.test('verifier: structural limits refuse floods before a DOM is built', async (t) => {
  const refused = (doc: string) => {
    try {
      verifyReceiptXml(doc, anchors);
      return null;
    } catch (err) {
      return err as { code: string; details?: { limit: string } };
    }
  };
  t.match(
    refused(`<BLai>${'<a/>'.repeat(120_000)}</BLai>`),
    { code: 'FEEGATE_ERR_XML_TOO_COMPLEX', details: { limit: 'elements', max: XML_LIMITS.elements } },
    '120,000 elements',
  );
  t.match(
    refused(`${'<a>'.repeat(XML_LIMITS.depth + 1)}${'</a>'.repeat(XML_LIMITS.depth + 1)}`),
    { code: 'FEEGATE_ERR_XML_TOO_COMPLEX', details: { limit: 'depth' } },
    'too deep',
  );
  t.match(
    refused(`<BLai ${Array.from({ length: XML_LIMITS.attributesPerElement + 1 }, (_, i) => `a${i}="1"`).join(' ')}/>`),
    { code: 'FEEGATE_ERR_XML_TOO_COMPLEX', details: { limit: 'attributesPerElement' } },
    'too many attributes',
  );
  t.match(refused('<BLai>&x;</BLai>'), { code: 'FEEGATE_ERR_XML_MALFORMED' }, 'an undefined entity');
  t.equal(refused(`<r>${'<a/>'.repeat(XML_LIMITS.elements - 1)}</r>`)?.code, undefined, 'exactly at the limit: parsed (and reported on)');
  t.equal(refused(xml), null, 'a genuine receipt is far inside every limit');
});

eachDb('verifier: POST /v1/receipts/verify verifies in the worker pool; hostile documents get 4xx or a report, never 5xx', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const post = (body: string) => env.app.inject({ method: 'POST', url: '/v1/receipts/verify', headers: { 'content-type': 'application/xml' }, payload: body });
  const pool = verifierPool({ threads: env.app.deps.config.verifyThreads, queue: env.app.deps.config.verifyQueue });
  const done = pool.completed;
  const ok = await post(xml);
  t.equal(ok.statusCode, 200);
  t.match(ok.json(), { valid: true, unsigned: [], signed: ['/BLai/DLBLai', '/BLai/DSCKS/TCThu/Signature/Object'] });
  t.equal(pool.completed, done + 1, 'the report came from the worker pool');

  const flood = await post(`<BLai>${'<a/>'.repeat(120_000)}</BLai>`);
  t.equal(flood.statusCode, 400);
  t.match(flood.json().error, { code: 'FEEGATE_ERR_XML_TOO_COMPLEX', details: { limit: 'elements' } });
  for (const [what, doc, where] of UNSIGNED) {
    const r = await post(doc);
    t.equal(r.statusCode, 200, what);
    t.match(r.json(), { valid: false, signature_valid: true, unsigned: [where] }, what);
  }
  for (const kind of ['ec', 'ed25519'] as const) {
    const r = await post(withCert(kind));
    t.equal(r.statusCode, 200, `${kind}: a report, not a 5xx`);
    t.equal(r.json().valid, false, kind);
    t.match(
      r.json().problems.find((p: { rule: string }) => p.rule === 'DSIG-012'),
      { part: 'certificate', message: /^Unsupported algorithm/ },
      `${kind}: DSIG-012`,
    );
  }
});

eachDb('verifier: a full verifier queue is shed at once with 503 and Retry-After', async (t, { db }) => {
  // Its own pool (one thread, one waiting place): the first receipt waits for the thread to start.
  const env = await makeApp(db, { verifyThreads: 1, verifyQueue: 1, verifyRateLimitPerMinute: 1000 });
  t.teardown(env.close);
  const answers = await Promise.all(
    Array.from({ length: 8 }, () =>
      env.app.inject({
        method: 'POST',
        url: '/v1/receipts/verify',
        headers: { 'content-type': 'application/xml' },
        payload: xml,
      }),
    ),
  );
  const shed = answers.filter((a) => a.statusCode === 503);
  t.ok(shed.length >= 1, `${shed.length} of 8 shed`);
  t.ok(
    answers.some((a) => a.statusCode === 200),
    'the first ones are verified',
  );
  t.same(
    answers.filter((a) => a.statusCode !== 200 && a.statusCode !== 503),
    [],
    'nothing else',
  );
  t.equal(shed[0]?.json().error.code, 'FEEGATE_ERR_VERIFIER_BUSY');
  t.equal(shed[0]?.headers['retry-after'], '2');
});

eachDb('verifier: public routes have a tight per-IP bucket, checked before the body is parsed, apart from API keys', async (t, { db }) => {
  const env = await makeApp(db, { verifyRateLimitPerMinute: 3, publicRateLimitPerMinute: 2, rateLimitPerMinute: 100 });
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const verify = (ip: string) =>
    env.app.inject({
      method: 'POST',
      url: '/v1/receipts/verify',
      remoteAddress: ip,
      headers: { 'content-type': 'application/xml' },
      payload: '<BLai><DLBLai></BLai>',
    });
  const codes = [];
  for (let i = 0; i < 4; i++) codes.push((await verify('198.51.100.7')).statusCode);
  t.same(codes, [400, 400, 400, 429], 'three malformed documents parsed and refused, the fourth refused by the bucket before parsing');
  const limited = await verify('198.51.100.7');
  t.equal(limited.json().error.code, 'FEEGATE_ERR_RATE_LIMITED');
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After');
  t.equal((await verify('198.51.100.8')).statusCode, 400, 'another address has its own bucket');
  t.equal((await verify('2001:db8:1:2::1')).statusCode, 400);
  for (let i = 0; i < 3; i++) await verify(`2001:db8:1:2::${i + 2}`);
  t.equal((await verify('2001:db8:1:2:ffff::9')).statusCode, 429, 'IPv6 clients are counted per /64');

  const page = (ip: string) => env.app.inject({ method: 'GET', url: '/r/AAAAAAAAAAAA', remoteAddress: ip });
  t.same(
    [(await page('198.51.100.9')).statusCode, (await page('198.51.100.9')).statusCode, (await page('198.51.100.9')).statusCode],
    [404, 404, 429],
    'the lookup page: PUBLIC_RATE_LIMIT_PER_MINUTE per address',
  );
  const dl = await env.app.inject({ method: 'GET', url: '/r/AAAAAAAAAAAA/xml', remoteAddress: '198.51.100.9' });
  t.equal(dl.statusCode, 404, 'the download has a bucket of its own');

  const api = client(env.app, ten.keys.integration);
  for (let i = 0; i < 5; i++) {
    const r = await env.app.inject({
      method: 'GET',
      url: '/v1/receipts',
      remoteAddress: '198.51.100.7',
      headers: { authorization: `Bearer ${ten.keys.integration}` },
    });
    t.equal(r.statusCode, 200, `API key call ${i + 1} from the limited address: the key's own bucket`);
  }
  t.equal((await api.get('/v1/receipts')).status, 200);
});

eachDb('verifier: with trustProxy, X-Forwarded-For decides the public bucket; without it, it does not', async (t, { db }) => {
  const proxy = '10.0.0.5';
  const hit = (app: typeof env.app, client: string) =>
    app.inject({ method: 'GET', url: '/r/AAAAAAAAAAAA', remoteAddress: proxy, headers: { 'x-forwarded-for': client } });
  const env = await makeApp(db, { publicRateLimitPerMinute: 2, trustProxy: [proxy] });
  t.teardown(env.close);
  t.same(
    [(await hit(env.app, '203.0.113.1')).statusCode, (await hit(env.app, '203.0.113.1')).statusCode, (await hit(env.app, '203.0.113.1')).statusCode],
    [404, 404, 429],
    'behind the trusted proxy: the forwarded client is limited',
  );
  t.equal((await hit(env.app, '203.0.113.2')).statusCode, 404, 'another forwarded client has its own bucket');
  const direct = await env.app.inject({ method: 'GET', url: '/r/AAAAAAAAAAAA', remoteAddress: '192.0.2.50', headers: { 'x-forwarded-for': '203.0.113.1' } });
  t.equal(direct.statusCode, 404, 'a peer that is not the trusted proxy cannot borrow a forwarded address: its own bucket');

  const plain = await makeApp(db, { publicRateLimitPerMinute: 2 });
  t.teardown(plain.close);
  t.same(
    [(await hit(plain.app, '203.0.113.1')).statusCode, (await hit(plain.app, '203.0.113.2')).statusCode, (await hit(plain.app, '203.0.113.3')).statusCode],
    [404, 404, 429],
    'without trustProxy: X-Forwarded-For is ignored, one bucket for the peer',
  );
});

t.test('config: TRUST_PROXY', async (t) => {
  t.equal(loadConfig({}).trustProxy, false, 'off by default');
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true);
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.5, 10.1.0.0/16,loopback' }).trustProxy, ['10.0.0.5', '10.1.0.0/16', 'loopback']);
  t.throws(() => loadConfig({ TRUST_PROXY: 'proxy.example; rm -rf' }), /TRUST_PROXY must be/);
  t.same([loadConfig({}).verifyRateLimitPerMinute, loadConfig({}).publicRateLimitPerMinute], [30, 120], "public buckets far tighter than an API key's 6,000");
});
