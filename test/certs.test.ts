/**
 * Signing certificates: the dev CA, the checks (each refusal with its code), PKCS#12 as OpenSSL
 * writes it (modern AES/PBKDF2/SHA-256 MAC and -legacy RC2/SHA-1) and as forge writes it, PEM,
 * the CLI import with rotation (old receipts still verify), expiry warnings (CLI and /metrics),
 * and an expired certificate refused at signing time.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { eachDb } from './helpers/db.js';
import { billAndPayment, client, makeApp, payAt, seedTenant, TEST_DEV_CA_DIR, TEST_MASTER_KEY } from './helpers/app.js';
import { xmlsecOrSkip, xmlsecVerify } from './helpers/xmlsec.js';
import { createCa, issueLeaf, certInfo, generateRsaKey } from '../certs/x509.js';
import { checkSigningCert } from '../certs/checks.js';
import { readPem, readPkcs12, readSigningMaterial, writePkcs12 } from '../certs/pkcs12.js';
import { loadOrCreateDevCa } from '../certs/dev-ca.js';
import { runCli } from '../gateway/cli/main.js';
import { loadConfig } from '../gateway/config.js';
import { drainOutbox } from '../gateway/outbox/outbox.js';
import { verifyReceiptXml } from '../receipts/verify.js';

const at = new Date('2026-06-01T00:00:00Z');
const root = createCa({ commonName: 'Test Root CA', organization: 'Tổ chức thử', notBefore: new Date('2020-01-01'), years: 30 });
const good = issueLeaf({
  ca: root,
  commonName: 'UBND PHƯỜNG DỊCH VỌNG',
  taxCode: '0101234567',
  province: 'Hà Nội',
  notBefore: new Date('2026-01-01'),
  notAfter: new Date('2029-01-01'),
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

t.test("a signing certificate is shaped like a Vietnamese CA's", async (t) => {
  const info = certInfo(good.certPem);
  t.equal(info.taxCode, '0101234567', 'tax code read from UID=MST:');
  t.equal(info.commonName, 'UBND PHƯỜNG DỊCH VỌNG', 'Vietnamese CN survives (UTF8String)');
  t.match(info.subject, /^UID=MST:0101234567, CN=UBND PHƯỜNG DỊCH VỌNG, ST=Hà Nội, C=VN$/);
  t.same(info.keyUsage, { digitalSignature: true, nonRepudiation: true });
  const r = spawnSync('openssl', ['x509', '-noout', '-subject', '-nameopt', 'utf8'], { input: good.certPem, encoding: 'utf8' });
  t.match(r.stdout, /UID ?= ?MST:0101234567/, 'OpenSSL reads the UID attribute');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-devca-'));
  const a = loadOrCreateDevCa(dir);
  const b = loadOrCreateDevCa(dir);
  t.equal(a.certPem, b.certPem, 'the dev CA is created once and then reused');
  t.ok(fs.existsSync(path.join(dir, 'dev-ca.dev-only.pem')), 'its file says dev-only');
});

t.test('checks: each refusal has its own code', async (t) => {
  const base = { certPem: good.certPem, keyPem: good.keyPem, chainPems: [], anchors: [root.certPem], at, taxCode: '0101234567' };
  t.equal(
    codeOf(() => checkSigningCert(base)),
    undefined,
    'a good certificate passes',
  );
  t.equal(
    codeOf(() => checkSigningCert({ ...base, keyPem: generateRsaKey().keyPem })),
    'FEEGATE_ERR_CERT_KEY_MISMATCH',
    'wrong key',
  );
  t.equal(
    codeOf(() => checkSigningCert({ ...base, at: new Date('2029-02-01') })),
    'FEEGATE_ERR_CERT_EXPIRED',
    'expired',
  );
  t.equal(
    codeOf(() => checkSigningCert({ ...base, at: new Date('2025-12-01') })),
    'FEEGATE_ERR_CERT_NOT_YET_VALID',
    'not yet valid',
  );
  const other = createCa({ commonName: 'Other CA', organization: 'x', notBefore: new Date('2020-01-01'), years: 30 });
  t.equal(
    codeOf(() => checkSigningCert({ ...base, anchors: [other.certPem] })),
    'FEEGATE_ERR_CERT_UNTRUSTED',
    'untrusted chain',
  );
  t.equal(
    codeOf(() => checkSigningCert({ ...base, anchors: [] })),
    'FEEGATE_ERR_CERT_UNTRUSTED',
    'no anchor at all',
  );
  const encOnly = issueLeaf({
    ca: root,
    commonName: 'X',
    taxCode: '0101234567',
    notBefore: new Date('2026-01-01'),
    notAfter: new Date('2029-01-01'),
    keyUsage: { keyEncipherment: true },
  });
  t.equal(
    codeOf(() => checkSigningCert({ ...base, certPem: encOnly.certPem, keyPem: encOnly.keyPem })),
    'FEEGATE_ERR_CERT_KEY_USAGE',
    'key usage without signing',
  );
  t.equal(
    codeOf(() => checkSigningCert({ ...base, taxCode: '0309999999' })),
    'FEEGATE_ERR_CERT_TAX_CODE_MISMATCH',
    "another unit's certificate",
  );
  t.equal(
    codeOf(() => checkSigningCert({ ...base, certPem: root.certPem, keyPem: root.keyPem })),
    'FEEGATE_ERR_CERT_KEY_USAGE',
    'a CA certificate does not sign receipts',
  );
  t.equal(
    codeOf(() => checkSigningCert({ ...base, certPem: 'nonsense' })),
    'FEEGATE_ERR_CERT_INVALID',
  );

  // Through an intermediate: trusted when the intermediate is offered, untrusted without it.
  const inter = (() => {
    const m = issueLeaf({ ca: root, commonName: 'Issuing CA', taxCode: '0000000000', notBefore: new Date('2020-01-01'), notAfter: new Date('2040-01-01') });
    return m;
  })();
  t.equal(
    codeOf(() => checkSigningCert({ ...base, certPem: inter.certPem, keyPem: inter.keyPem, taxCode: undefined, anchors: [] })),
    'FEEGATE_ERR_CERT_UNTRUSTED',
  );
});

t.test('PKCS#12: OpenSSL modern and legacy, forge AES and 3DES, PEM; wrong password', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-p12-'));
  fs.writeFileSync(path.join(dir, 'k.pem'), good.keyPem);
  fs.writeFileSync(path.join(dir, 'c.pem'), good.certPem);
  fs.writeFileSync(path.join(dir, 'ca.pem'), root.certPem);
  const ossl = (args: string[]) => spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  t.equal(ossl(['pkcs12', '-export', '-inkey', 'k.pem', '-in', 'c.pem', '-certfile', 'ca.pem', '-passout', 'pass:s3cret', '-out', 'modern.p12']).status, 0);
  t.equal(ossl(['pkcs12', '-export', '-legacy', '-inkey', 'k.pem', '-in', 'c.pem', '-passout', 'pass:s3cret', '-out', 'legacy.p12']).status, 0);
  t.match(ossl(['pkcs12', '-info', '-noout', '-in', 'modern.p12', '-passin', 'pass:s3cret']).stderr, /AES-256-CBC/, 'modern file uses PBES2/AES');
  t.match(ossl(['pkcs12', '-info', '-noout', '-legacy', '-in', 'legacy.p12', '-passin', 'pass:s3cret']).stderr, /RC2/, 'legacy file uses RC2');
  const files: [string, Buffer][] = [
    ['openssl modern', fs.readFileSync(path.join(dir, 'modern.p12'))],
    ['openssl legacy', fs.readFileSync(path.join(dir, 'legacy.p12'))],
    ['forge aes256', writePkcs12({ ...good, chainPems: [root.certPem] }, 's3cret', 'aes256')],
    ['forge 3des', writePkcs12({ ...good, chainPems: [] }, 's3cret', '3des')],
  ];
  for (const [name, buf] of files) {
    const m = readPkcs12(buf, 's3cret');
    t.equal(certInfo(m.certPem).fingerprint, certInfo(good.certPem).fingerprint, `${name}: the leaf`);
    t.equal(
      codeOf(() => checkSigningCert({ ...m, anchors: [root.certPem], at })),
      undefined,
      `${name}: key matches, passes every check`,
    );
    t.equal(
      codeOf(() => readPkcs12(buf, 'wrong')),
      'FEEGATE_ERR_CERT_PASSWORD',
      `${name}: wrong password refused`,
    );
  }
  t.equal(readPkcs12(files[0]![1], 's3cret').chainPems.length, 1, 'the CA certificate in the file becomes the chain');
  const pem = readPem(good.keyPem + good.certPem + root.certPem);
  t.equal(pem.chainPems.length, 1, 'PEM: key, leaf and chain');
  t.equal(
    certInfo(readSigningMaterial(Buffer.from(good.certPem + good.keyPem)).certPem).fingerprint,
    certInfo(good.certPem).fingerprint,
    'PEM detected by content, any order',
  );
  t.equal(
    codeOf(() => readSigningMaterial(Buffer.from('garbage'))),
    'FEEGATE_ERR_CERT_INVALID',
  );
});

eachDb('certs: CLI import, rotation (old receipts still verify), expiry warnings, expired refused at signing', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const config = loadConfig({}, { masterKey: TEST_MASTER_KEY, devCaDir: TEST_DEV_CA_DIR });
  const cli = async (...argv: string[]) => {
    const out: string[] = [];
    const code = await runCli(argv, { db, clock: env.clock, config, io: { out: (l) => out.push(l), err: (l) => out.push(l) } });
    return { code, out: out.join('\n') };
  };
  const pay = async () => {
    const { payment } = await billAndPayment(env.app, ten.keys.integration);
    await payAt(env.sim, payment, 'success');
    await drainOutbox(env.app.deps, env.app.deps.handlers);
    return (await client(env.app, ten.keys.finance).get(`/v1/receipts?payment_id=${payment.id}`)).body.data[0] as { id: string; signing_cert_id: string };
  };
  const xmlOf = async (id: string) => ((await db('receipts').where({ id }).first()) as { xml: string }).xml;

  const first = await pay();
  const devCert = (await client(env.app, ten.keys.finance).get('/v1/signing_certs')).body.data;
  t.equal(devCert.length, 1, 'development issued the unit a certificate from the dev CA');
  t.match(devCert[0], { source: 'dev_ca', status: 'active', tax_code: '0101234567' });
  t.notOk(JSON.stringify(devCert).includes('PRIVATE KEY'), 'no key in the API');
  const stored = (await db('signing_certs').first('id', 'key_enc')) as { id: string; key_enc: string };
  const keyPem = env.app.deps.secrets.open(stored.key_enc, `signing-key:${stored.id}`);
  t.match(keyPem, /^-----BEGIN PRIVATE KEY-----/, 'the master key opens it');
  const body = keyPem.replace(/-----[A-Z ]+-----|\s/g, '');
  t.notOk(stored.key_enc.includes('PRIVATE KEY') || stored.key_enc.includes(body.slice(40, 80)), 'the stored value is not the key (sealed at rest)');

  const dev = loadOrCreateDevCa(TEST_DEV_CA_DIR);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-import-'));
  const now = env.clock.now();
  const fresh = issueLeaf({
    ca: dev,
    commonName: 'UBND (chứng thư mới)',
    taxCode: '0101234567',
    notBefore: now,
    notAfter: new Date(now.getTime() + 10 * 86400_000),
  });
  fs.writeFileSync(path.join(dir, 'new.p12'), writePkcs12({ ...fresh, chainPems: [] }, 'pw'));
  process.env.FEEGATE_TEST_P12_PW = 'pw';
  const imp = await cli('certs', 'import', '--tenant', ten.code, '--password-env', 'FEEGATE_TEST_P12_PW', path.join(dir, 'new.p12'));
  t.equal(imp.code, 0, imp.out);
  t.match(imp.out, /imported .*UBND \(chứng thư mới\)/);

  const second = await pay();
  t.not(second.signing_cert_id, first.signing_cert_id, 'new receipts use the new certificate');
  t.match(await xmlOf(second.id), /CN=UBND \(chứng thư mới\)/);
  for (const r of [first, second]) {
    const xml = await xmlOf(r.id);
    t.ok(verifyReceiptXml(xml, env.app.deps.certs.anchors()).valid, 'both receipts verify (ours)');
    if (xmlsecOrSkip(t, 'both verify (xmlsec1)'))
      t.ok(
        (await xmlsecVerify(xml, { dataElement: 'DLBLai', trustedPems: [dev.certPem], verificationTime: /<SigningTime>([^<]+)</.exec(xml)![1] })).ok,
        'both verify (xmlsec1)',
      );
  }

  const list = await cli('certs', 'list', '--tenant', ten.code);
  t.match(list.out, /active .*WARNING: expires in 10 days/, 'the CLI warns ahead of expiry');
  t.match(list.out, /retired /, 'the old certificate is kept, retired');
  t.equal((await cli('certs', 'check', '--tenant', ten.code)).code, 1, '`certs check` fails for monitoring');
  const metrics = (await env.app.inject('/metrics')).body;
  t.match(
    metrics,
    new RegExp(`feegate_signing_cert_days_left\\{tenant="${ten.code}",serial="[0-9a-f]+",expiring_soon="true"\\} 10`),
    '/metrics shows days left',
  );

  // Refusals through the CLI: an expired certificate and another CA's.
  const old = issueLeaf({ ca: dev, commonName: 'Old', taxCode: '0101234567', notBefore: new Date('2020-01-01'), notAfter: new Date('2021-01-01') });
  fs.writeFileSync(path.join(dir, 'old.pem'), old.keyPem + old.certPem);
  const bad = await cli('certs', 'import', '--tenant', ten.code, path.join(dir, 'old.pem'));
  t.equal(bad.code, 1);
  t.match(bad.out, /expired/);
  const stranger = issueLeaf({ ca: root, commonName: 'X', taxCode: '0101234567', notBefore: new Date('2026-01-01'), notAfter: new Date('2029-01-01') });
  fs.writeFileSync(path.join(dir, 'stranger.pem'), stranger.keyPem + stranger.certPem);
  const untrusted = await cli('certs', 'import', '--tenant', ten.code, path.join(dir, 'stranger.pem'));
  t.equal(untrusted.code, 1);
  t.match(untrusted.out, /trust anchor/);

  // Past the active certificate's end: no receipt is signed, the work waits (never a wrong signature).
  env.clock.advance(11 * 86400_000);
  const { payment } = await billAndPayment(env.app, ten.keys.integration);
  await payAt(env.sim, payment, 'success');
  await drainOutbox(env.app.deps, env.app.deps.handlers);
  t.equal((await db('receipts').where({ payment_id: payment.id })).length, 0, 'nothing signed with an expired certificate');
  const row = (await db('outbox').where({ kind: 'receipt.issue', status: 'pending' }).first()) as { last_error: string };
  t.match(row.last_error, /expired/, 'the outbox row says why and retries');
});
