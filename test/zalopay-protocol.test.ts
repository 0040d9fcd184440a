/** ZaloPay MACs reproduce the reference's vectors (shared/docs/payment-protocols.md §3.6). */
import t from 'tap';
import { appTransId, referenceOf, yymmdd, zpMac, zpVerify } from '../adapters/zalopay/protocol.js';

const KEY1 = 'PcY4iZIKFCIdgZvA6ueMcMHHUbRLYjPL';
const KEY2 = 'kLtgPl8HHhfvMuDHPwKfgfsY4Ydm9eIz';

t.test('callback, create, query and redirect MACs', async (t) => {
  const data =
    '{"app_id":2553,"app_trans_id":"200904_2553_1598435687208","app_time":1599189392817,"app_user":"demo","amount":10000,"embed_data":"{\\"merchantinfo\\":\\"embeddata123\\",\\"promotioninfo\\":\\"\\"}","item":"[{\\"itemid\\":\\"knb\\",\\"itemname\\":\\"kim nguyen bao\\",\\"itemprice\\":198400,\\"itemquantity\\":1}]","zp_trans_id":200904000000389,"server_time":1599189413498,"channel":38,"merchant_user_id":"7ZMSl3nEg5sOUJzOLSoUFT8xKNQVaLOLXHB--8Eytqc","user_fee_amount":0,"discount_amount":0}';
  t.ok(zpVerify(KEY2, data, 'd8d33baf449b31d7f9b94fa50d7c942c08cd4d83f28fa185557da21acb104f67'), 'the documented callback verifies');
  t.notOk(zpVerify(KEY2, data.replace('10000', '10001'), 'd8d33baf449b31d7f9b94fa50d7c942c08cd4d83f28fa185557da21acb104f67'), 'and fails when changed');
  t.notOk(zpVerify(KEY1, data, 'd8d33baf449b31d7f9b94fa50d7c942c08cd4d83f28fa185557da21acb104f67'), 'key1 is not the callback key');
  t.equal(
    zpMac(KEY1, [2553, '231115_000001', 'user123', 50000, 1700000000000, '{"redirecturl":"https://example.com/result"}', '[]']),
    '3557144e2c3166d006efaaef44d03595524b705f36a347656f99ecea0ae5437e',
  );
  t.equal(zpMac(KEY1, [2553, '231115_000001', KEY1]), '831fcec4e7fe4a114a45a56506d1f53e1202bdc6ebd9c55a23acd980ba29d5db');
  t.equal(zpMac(KEY2, [2553, '231115_000001', 38, 'zalopayapp', 50000, 0, 1]), 'ab8dbb1d24adc0942f27f0d4c40038b2a5eb6e8b7bf21adb5e6f8dfe53f48020');
});

t.test('app_trans_id starts with the date in Vietnam', async (t) => {
  t.equal(yymmdd(new Date('2026-03-10T16:59:59Z')), '260310');
  t.equal(yymmdd(new Date('2026-03-10T17:00:00Z')), '260311', 'midnight in Vietnam is 17:00 UTC');
  t.equal(appTransId(new Date('2026-03-10T02:00:00Z'), 'FGABC'), '260310_FGABC');
  t.equal(referenceOf('260310_FGABC'), 'FGABC');
  t.equal(referenceOf('FGABC'), null);
});
