/**
 * E-receipts end to end: a succeeded payment gets exactly one signed receipt through the outbox;
 * it verifies with xmlsec1 (independent) and with our verifier; one changed character in the
 * amount, the signing time or the whitespace makes both fail; numbering per series and year;
 * refunds add a linked adjustment; the public lookup page and the verify endpoint.
 */
import crypto from 'node:crypto';
import { eachDb } from './helpers/db.js';
import { billAndPayment, billInput, client, makeApp, payAt, seedTenant } from './helpers/app.js';
import { xmlsecOrSkip, xmlsecVerify } from './helpers/xmlsec.js';
import { claimBatch, drainOutbox, type OutboxRow } from '../gateway/outbox/outbox.js';
import { verifyReceiptXml } from '../receipts/verify.js';
import type { TestApp } from './helpers/app.js';

async function paid(env: TestApp, key: string, bill: Record<string, unknown> = {}) {
  const { payment } = await billAndPayment(env.app, key, bill);
  await payAt(env.sim, payment, 'success');
  return payment as { id: string; reference: string };
}

const drain = (env: TestApp) => drainOutbox(env.app.deps, env.app.deps.handlers);

async function xmlsec(env: TestApp, xml: string) {
  const time = /<SigningTime>([^<]+)</.exec(xml)?.[1];
  return xmlsecVerify(xml, { dataElement: 'DLBLai', trustedPems: env.app.deps.certs.anchors(), verificationTime: time });
}

eachDb('receipts: one signed receipt per succeeded payment, verifiable by xmlsec1 and by us', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const p1 = await paid(env, ten.keys.integration);
  t.equal((await api.get(`/v1/receipts?payment_id=${p1.id}`)).body.data.length, 0, 'nothing before the outbox runs');
  await drain(env);
  await drain(env);
  const list = (await api.get(`/v1/receipts?payment_id=${p1.id}`)).body.data;
  t.equal(list.length, 1, 'one receipt');
  const r = list[0];
  t.match(r, { kind: 'original', template_symbol: '01BLP0-001', series_symbol: 'AA-26E', year: 2026, number: '0000001', amount: 58_000 });
  t.match(r.lookup_code, /^[A-Z2-9]{12}$/);

  const xmlRes = await env.app.inject({ method: 'GET', url: `/v1/receipts/${r.id}/xml`, headers: { authorization: `Bearer ${ten.keys.integration}` } });
  t.equal(xmlRes.statusCode, 200);
  t.match(String(xmlRes.headers['content-type']), /^application\/xml/);
  const xml = xmlRes.body;
  t.equal(crypto.createHash('sha256').update(xmlRes.rawPayload).digest('hex'), r.xml_sha256, 'served byte for byte as stored and signed');
  t.match(xml, /<TgTTTBSo>58000<\/TgTTTBSo><TgTTTBChu>Năm mươi tám nghìn đồng<\/TgTTTBChu>/, 'total in digits and in words');
  t.match(xml, /<TCThu><Ten>UBND [^<]+<\/Ten><MST>0101234567<\/MST>/, 'collecting unit and tax code');
  t.match(xml, /<NNop><Ten>Trần Thị Bình<\/Ten>/, 'payer');
  t.match(xml, /<TLPhi>Lệ phí đăng ký khai sinh<\/TLPhi><TPhi>50000<\/TPhi>/, 'fee lines');
  t.match(xml, new RegExp(`<DLieu>${p1.reference}</DLieu>`), 'payment reference');
  t.notMatch(xml, /\n/, 'compact: no newline anywhere');

  if (xmlsecOrSkip(t, 'xmlsec1 verifies the receipt')) {
    const sec = await xmlsec(env, xml);
    t.ok(sec.ok, 'xmlsec1 verifies the receipt against the dev CA');
    t.match(sec.output, /SignedInfo References \(ok\/all\): 2\/2/, 'both references (data and SigningTime)');
  }
  const own = verifyReceiptXml(xml, env.app.deps.certs.anchors());
  t.ok(own.valid, 'our verifier agrees');
  t.equal(own.signer?.tax_code, '0101234567', 'signer tax code from UID=MST:');
  t.match(own.signer?.subject, /UID=MST:0101234567, CN=UBND /);
  t.equal(own.chain.length, 2, 'leaf → dev CA');

  // One changed character in the amount, the signing time, the whitespace: both verifiers refuse.
  const cases: [string, string, string][] = [
    ['amount', xml.replace('<TPhi>50000</TPhi>', '<TPhi>50001</TPhi>'), 'data'],
    ['signing time', xml.replace(/<SigningTime>(\d)/, (_m, d: string) => `<SigningTime>${(Number(d) + 1) % 10}`), 'signing_time'],
    ['whitespace', xml.replace('<TTChung>', '<TTChung> '), 'data'],
  ];
  for (const [what, bad, part] of cases) {
    t.not(bad, xml, `${what}: the document changed`);
    if (xmlsecOrSkip(t, `${what}: xmlsec1 refuses`)) t.notOk((await xmlsec(env, bad)).ok, `${what}: xmlsec1 refuses`);
    const rep = verifyReceiptXml(bad, env.app.deps.certs.anchors());
    t.notOk(rep.valid, `${what}: our verifier refuses`);
    t.same(rep.tampered, [part], `${what}: reported as tampered ${part}`);
  }

  // The second paid payment takes number 2; the event went out.
  await paid(env, ten.keys.integration);
  await drain(env);
  const all = (await api.get('/v1/receipts')).body.data.map((x: { number: string }) => x.number).sort();
  t.same(all, ['0000001', '0000002']);
  const events = (await client(env.app, ten.keys.admin).get('/v1/events')).body.data.filter((e: { type: string }) => e.type === 'receipt.issued');
  t.equal(events.length, 2, 'receipt.issued once per receipt');

  // Redelivering the outbox work changes nothing: still one receipt per payment.
  await env.app.deps.db.transaction(async (trx) => {
    const { issueForPayment } = await import('../receipts/issue.js');
    const again = await issueForPayment(trx, env.app.deps, p1.id);
    t.equal(again.id, r.id, 'issuing again returns the same receipt');
  });
  t.equal((await api.get(`/v1/receipts?payment_id=${p1.id}`)).body.data.length, 1);

  // A receipt is never edited.
  await t.rejects(db('receipts').where({ id: r.id }).update({ amount: 1 }), /append-only/, 'UPDATE is refused by the database');

  // The public lookup page and download.
  const page = await env.app.inject({ method: 'GET', url: `/r/${r.lookup_code}` });
  t.equal(page.statusCode, 200);
  t.match(page.body, /BIÊN LAI THU PHÍ, LỆ PHÍ/);
  t.match(page.body, /58\.000 đ/, 'amounts formatted the Vietnamese way');
  t.match(page.body, /Chữ ký số hợp lệ/, 'verification status');
  t.match(page.body, /<svg/, 'QR code of the lookup link');
  const dl = await env.app.inject({ method: 'GET', url: `/r/${r.lookup_code}/xml` });
  t.equal(dl.body, xml, 'download is the signed XML');
  t.equal((await env.app.inject({ method: 'GET', url: '/r/AAAAAAAAAAAA' })).statusCode, 404);
});

eachDb('receipts: a refund adds a signed adjustment linked to the original, which is unchanged', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const p = await paid(env, ten.keys.integration);
  await drain(env);
  const fin = client(env.app, ten.keys.finance);
  const original = (await fin.get(`/v1/receipts?payment_id=${p.id}`)).body.data[0];
  const before = (await db('receipts').where({ id: original.id }).first()) as { xml: string };
  const refund = await fin.post(`/v1/payments/${p.id}/refunds`, { amount: 8_000, reason: 'Thu thừa phí sao y' });
  t.equal(refund.body.status, 'succeeded');
  await drain(env);
  const adj = (await fin.get(`/v1/receipts?payment_id=${p.id}&kind=adjustment`)).body.data;
  t.equal(adj.length, 1, 'one adjustment');
  t.match(adj[0], { refund_id: refund.body.id, original_receipt_id: original.id, amount: 8_000, number: '0000002' });
  const xml = (await env.app.inject({ method: 'GET', url: `/v1/receipts/${adj[0].id}/xml`, headers: { authorization: `Bearer ${ten.keys.finance}` } })).body;
  t.match(
    xml,
    /<TTBLLQuan><TCBLai>2<\/TCBLai><KHMSBLLQuan>01BLP0-001<\/KHMSBLLQuan><KHBLLQuan>AA-26E<\/KHBLLQuan><SBLLQuan>0000001<\/SBLLQuan>/,
    'names the original',
  );
  if (xmlsecOrSkip(t, 'the adjustment verifies with xmlsec1')) t.ok((await xmlsec(env, xml)).ok, 'the adjustment verifies with xmlsec1');
  t.ok(verifyReceiptXml(xml, env.app.deps.certs.anchors()).valid);
  const after = (await db('receipts').where({ id: original.id }).first()) as { xml: string };
  t.equal(after.xml, before.xml, 'the original is untouched');
});

eachDb('receipts: awkward text (markup, entities, CDATA ends) still verifies everywhere; control characters never get in', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  // CR, LF, TAB and control characters in a name are refused at the API now (FEEGATE_ERR_TEXT_INVALID).
  const refused = await client(env.app, ten.keys.integration).post('/v1/bills', billInput({ payer: { name: 'Nguyễn\r\nVăn\tA \u0001' } }));
  t.equal(refused.body?.error?.code, 'FEEGATE_ERR_TEXT_INVALID', 'a name with CR LF, TAB and a control character is refused');
  const p = await paid(env, ten.keys.integration, {
    payer: { name: 'Nguyễn Văn A <b>&amp; "x" ', id_number: '001190012345' },
    items: [{ fee_code: 'LP01', name: 'Lệ phí ]]> <![CDATA[ & ', amount: 58_000 }],
  });
  await drain(env);
  const r = (await client(env.app, ten.keys.integration).get(`/v1/receipts?payment_id=${p.id}`)).body.data[0];
  const xml = ((await db('receipts').where({ id: r.id }).first()) as { xml: string }).xml;
  t.match(xml, /<Ten>Nguyễn Văn A &lt;b&gt;&amp;amp; "x" <\/Ten>/, 'markup escaped (an entity-looking "&amp;" too)');
  t.equal(verifyReceiptXml(xml, env.app.deps.certs.anchors()).document?.payer_name, 'Nguyễn Văn A <b>&amp; "x" ', 'the name reads back exactly');
  if (xmlsecOrSkip(t, 'xmlsec1 verifies')) t.ok((await xmlsec(env, xml)).ok, 'xmlsec1 verifies');
  t.ok(verifyReceiptXml(xml, env.app.deps.certs.anchors()).valid, 'our verifier agrees');
});

eachDb('receipts: numbering restarts at 1 on 1 January, Vietnam time', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  env.clock.set('2026-12-31T16:58:00Z'); // 23:58 on 31 Dec in Hanoi
  for (let i = 0; i < 2; i++) await paid(env, ten.keys.integration);
  await drain(env);
  env.clock.set('2026-12-31T17:00:30Z'); // 00:00:30 on 1 Jan 2027 in Hanoi (still 2026 in UTC)
  for (let i = 0; i < 2; i++) await paid(env, ten.keys.integration);
  await drain(env);
  const rows = (await api.get('/v1/receipts')).body.data as { year: number; number: string; series_symbol: string }[];
  const got = rows.map((r) => `${r.series_symbol}/${r.year}/${r.number}`).sort();
  t.same(got, ['AA-26E/2026/0000001', 'AA-26E/2026/0000002', 'AA-27E/2027/0000001', 'AA-27E/2027/0000002']);
});

eachDb('receipts: a batch issues for many units at once, in statements that do not grow with it, and a lost lease undoes all of it', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const { deps } = env.app;
  const a = await seedTenant(db, env.clock);
  const b = await seedTenant(db, env.clock);
  const handler = deps.handlers.get('receipt.issue')!;
  const claim = () => claimBatch(deps.db, deps.clock, 50, 60, ['receipt.issue']);
  const statementsFor = async (rows: OutboxRow[]) => {
    let n = 0;
    const count = () => {
      n++;
    };
    deps.db.on('query', count);
    try {
      await handler.runBatch!(rows, deps);
    } finally {
      deps.db.removeListener('query', count);
    }
    return n;
  };
  const numbers = async () =>
    ((await db('receipts').orderBy(['tenant_id', 'number'])) as { tenant_id: string; number: number }[])
      .map((r) => `${r.tenant_id === a.tenantId ? 'A' : 'B'}${r.number}`)
      .sort();

  // A lost lease (another worker took one row over) rolls back the batch: no receipt, no number used.
  for (const k of [a, a, b]) await paid(env, k.keys.integration);
  const lost = await claim();
  t.equal(lost.length, 3);
  await db('outbox').where({ id: lost[1]!.id }).update({ lease_token: crypto.randomUUID() });
  await t.rejects(handler.runBatch!(lost, deps), /lease lost/, 'the batch fails as a whole');
  t.same(await numbers(), [], 'nothing of it was kept');
  await db('outbox')
    .whereIn(
      'id',
      lost.map((r) => r.id),
    )
    .update({ locked_until: null, lease_token: null });

  // Two units, three payments: every receipt numbered from 1 in its unit's series. (This first
  // batch also makes each unit's development series and certificate.)
  await handler.runBatch!(await claim(), deps);
  t.same(await numbers(), ['A1', 'A2', 'B1'], 'numbers continue without gaps per series, none lost to the rolled-back batch');

  // Three receipts, then three times as many: the same number of statements.
  for (const k of [a, a, b]) await paid(env, k.keys.integration);
  const small = await statementsFor(await claim());
  for (const k of [a, a, a, b, b, b, a, b, a]) await paid(env, k.keys.integration);
  const big = await claim();
  t.equal(big.length, 9);
  t.equal(await statementsFor(big), small, `${small} statements for 3 receipts and for 9`);
  t.same(await numbers(), ['A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'A8', 'A9', 'B1', 'B2', 'B3', 'B4', 'B5', 'B6'].sort());
  t.equal(
    await db('outbox')
      .where({ kind: 'receipt.issue', status: 'pending' })
      .count('* as n')
      .first()
      .then((r) => Number(r!.n)),
    0,
    'every row completed',
  );
  t.equal(
    await db('events')
      .where({ type: 'receipt.issued' })
      .count('* as n')
      .first()
      .then((r) => Number(r!.n)),
    15,
    'receipt.issued once each',
  );
});

eachDb('receipts: POST /v1/receipts/verify is public and refuses hostile XML', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  await paid(env, ten.keys.integration);
  await drain(env);
  const r = (await client(env.app, ten.keys.integration).get('/v1/receipts')).body.data[0];
  const xml = (await db('receipts').where({ id: r.id }).first()).xml as string;
  const post = (body: string, type = 'application/xml') =>
    env.app.inject({ method: 'POST', url: '/v1/receipts/verify', headers: { 'content-type': type }, payload: body });

  const ok = await post(xml);
  t.equal(ok.statusCode, 200, 'no API key needed');
  t.match(ok.json(), { valid: true, signature_valid: true, trusted: true, tampered: [], signer: { tax_code: '0101234567' } });
  t.match(ok.json().document, { total: '58000', number: '0000001' });

  const bad = await post(xml.replace('<TPhi>8000</TPhi>', '<TPhi>9000</TPhi>'));
  t.equal(bad.statusCode, 200);
  t.match(bad.json(), { valid: false, tampered: ['data'] });

  const xxe = `<?xml version="1.0"?><!DOCTYPE BLai [<!ENTITY x SYSTEM "file:///etc/passwd">]><BLai><DLBLai Id="a">&x;</DLBLai></BLai>`;
  const x = await post(xxe);
  t.equal(x.statusCode, 400);
  t.equal(x.json().error.code, 'FEEGATE_ERR_XML_DTD_FORBIDDEN', 'XXE refused before parsing');
  t.notMatch(x.body, /root:/, 'no file content leaks');
  const bomb = `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>`;
  t.equal((await post(bomb)).json().error.code, 'FEEGATE_ERR_XML_DTD_FORBIDDEN', 'entity expansion refused');
  const malformed = await post('<BLai><DLBLai></BLai>');
  t.equal(malformed.statusCode, 400);
  t.equal(malformed.json().error.code, 'FEEGATE_ERR_XML_MALFORMED');
  const big = await post(`<BLai>${'x'.repeat(600 * 1024)}</BLai>`);
  t.equal(big.statusCode, 413);
  t.equal(big.json().error.code, 'FEEGATE_ERR_BODY_TOO_LARGE');
  const unsigned = await post('<BLai><DLBLai Id="a"/></BLai>');
  t.match(unsigned.json(), { valid: false, problems: [{ rule: 'DSIG-001' }] });
  const wrapped = xml.replace('<DSCKS>', '<DLBLai Id="' + /DLBLai Id="([^"]+)"/.exec(xml)![1] + '"/><DSCKS>');
  t.ok(wrapped.includes('<DSCKS>'));
  t.match((await post(wrapped)).json().problems, [{ rule: 'VN-BL-007' }], 'a duplicated Id (signature wrapping) is reported');
  t.equal((await post('{"xml":"x"}', 'application/json')).statusCode, 400, 'JSON is not a receipt');
});

eachDb('receipts: dated when the money was collected, not when the worker runs (paid 23:59 on 31/12, issued 00:05 on 1/1)', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  env.clock.set('2026-12-31T16:59:00Z'); // 23:59 on 31 Dec in Hanoi
  const late = await paid(env, ten.keys.integration);
  // The outbox is behind (or the unit's certificate arrives late): nothing is issued before New Year.
  env.clock.set('2026-12-31T17:05:00Z'); // 00:05 on 1 Jan 2027 in Hanoi
  const early = await paid(env, ten.keys.integration);
  await drain(env);
  const get = async (id: string) => {
    const r = (await api.get(`/v1/receipts?payment_id=${id}`)).body.data[0] as {
      id: string;
      year: number;
      series_symbol: string;
      number: string;
      issued_at: string;
      signing_time: string;
    };
    const xml = ((await db('receipts').where({ id: r.id }).first()) as { xml: string }).xml;
    return { r, xml, payment: (await api.get(`/v1/payments/${id}`)).body as { succeeded_at: string } };
  };
  const a = await get(late.id);
  t.match(a.r, { series_symbol: 'AA-26E', year: 2026, number: '0000001' }, "the 31 December payment is in 2026's series");
  t.match(a.xml, /<NLap>2026-12-31<\/NLap>/, 'dated the day the money was collected (Ngày lập)');
  t.equal(a.r.issued_at, a.payment.succeeded_at, 'issued_at is the collection time');
  t.match(a.r.signing_time, /^2027-01-01T00:05:/, 'signed when it was signed');
  t.ok(verifyReceiptXml(a.xml, env.app.deps.certs.anchors()).valid, 'it verifies');
  const b = await get(early.id);
  t.match(b.r, { series_symbol: 'AA-27E', year: 2027, number: '0000001' }, "the 1 January payment opens 2027's series");
  t.match(b.xml, /<NLap>2027-01-01<\/NLap>/);
});
