/** The published VNPay test vectors (shared/docs/payment-protocols.md §1.7) reproduce exactly. */
import t from 'tap';
import {
  fieldsHash,
  fromVnpAmount,
  hmac512,
  parseVnpDate,
  paymentOutcome,
  pipeHash,
  QUERY_REQUEST_FIELDS,
  REFUND_REQUEST_FIELDS,
  secureHash,
  signData,
  toVnpAmount,
  verifySecureHash,
  vnpDate,
} from '../adapters/vnpay/protocol.js';

const V1 = {
  vnp_Amount: '1000000',
  vnp_BankCode: 'NCB',
  vnp_BankTranNo: 'VNP14422574',
  vnp_CardType: 'ATM',
  vnp_OrderInfo: 'Thanh toan don hang 2024-05-21T02:17:31.249Z',
  vnp_PayDate: '20240521091806',
  vnp_ResponseCode: '00',
  vnp_TmnCode: 'TEST_TMN_CODE',
  vnp_TransactionNo: '14422574',
  vnp_TransactionStatus: '00',
  vnp_TxnRef: '1716257871703',
};

t.test('V1: return/IPN sign data and hash', async (t) => {
  t.equal(
    signData(V1),
    'vnp_Amount=1000000&vnp_BankCode=NCB&vnp_BankTranNo=VNP14422574&vnp_CardType=ATM&vnp_OrderInfo=Thanh+toan+don+hang+2024-05-21T02%3A17%3A31.249Z&vnp_PayDate=20240521091806&vnp_ResponseCode=00&vnp_TmnCode=TEST_TMN_CODE&vnp_TransactionNo=14422574&vnp_TransactionStatus=00&vnp_TxnRef=1716257871703',
  );
  const hash = '649982421beb422556a1374713c74e58e716ecbd05007c0c0e1f7effdfaf361dbf146889ca446139afe11b9954c4d5c486e99e3b86fcfab6957f29eb0be72895';
  t.equal(secureHash(V1, 'test_secret'), hash);
  t.equal(
    secureHash({ ...V1, vnp_ResponseCode: '99' }, 'test_secret'),
    '503194f6d93b57b357b2d1d09742565e67e86d771352c5dca4fc8d39df3d392c6b3809add9405f97cfb9631f445e36c80656cfbf47eac67d97fa165865c13e1b',
  );
  t.ok(verifySecureHash({ ...V1, vnp_SecureHash: hash, vnp_SecureHashType: 'HmacSHA512' }, 'test_secret'), 'verifies, hash fields excluded');
  t.ok(verifySecureHash({ ...V1, vnp_SecureHash: hash.toUpperCase() }, 'test_secret'), 'upper-case hex too');
  t.notOk(verifySecureHash({ ...V1, vnp_Amount: '1000100', vnp_SecureHash: hash }, 'test_secret'), 'a changed amount fails');
  t.notOk(verifySecureHash({ ...V1, vnp_SecureHash: hash }, 'other_secret'), 'another secret fails');
  t.notOk(verifySecureHash({ ...V1, vnp_SecureHash: 'abc' }, 'test_secret'), 'a malformed hash fails');
});

t.test('V2: raw HMAC-SHA512', async (t) => {
  t.equal(
    hmac512('YOUR_SECURE_SECRET', 'vnp_Amount=10000&vnp_OrderInfo=Payment+for+order+%231234567890&vnp_TnxRef=1234567890'),
    '7bb8160a5d2085a85b3267817a40ee4f770a335282f19714726e6fc6f28a64c75a1e7e9c1aa96f3cbda5ce44095088fb4cb2af66c596d2f655b0b53966312089',
  );
  t.equal(
    hmac512('secret', 'data'),
    '6274071d33dec2728a2a1c903697fc1210b3252221c3d137e12d9f1ae5c8ed53e05e692b05a9eefff289667e2387c0fc0bd8a3d9bd7000782730c856a77a77d5',
  );
});

t.test('V3: payment URL sign data and hash', async (t) => {
  const params = {
    vnp_Version: '2.1.0',
    vnp_Command: 'pay',
    vnp_TmnCode: 'TEST_TMN_CODE',
    vnp_Amount: toVnpAmount(1000),
    vnp_BankCode: 'NCB',
    vnp_CreateDate: vnpDate(new Date('2021-01-01T00:00:00Z')),
    vnp_CurrCode: 'VND',
    vnp_IpAddr: '127.0.0.1',
    vnp_Locale: 'vn',
    vnp_OrderInfo: 'Test order',
    vnp_OrderType: 'other',
    vnp_ReturnUrl: 'https://example.com/return',
    vnp_TxnRef: 'ref1234567',
    vnp_ExpireDate: '',
  };
  t.equal(
    signData(params),
    'vnp_Amount=100000&vnp_BankCode=NCB&vnp_Command=pay&vnp_CreateDate=20210101070000&vnp_CurrCode=VND&vnp_IpAddr=127.0.0.1&vnp_Locale=vn&vnp_OrderInfo=Test+order&vnp_OrderType=other&vnp_ReturnUrl=https%3A%2F%2Fexample.com%2Freturn&vnp_TmnCode=TEST_TMN_CODE&vnp_TxnRef=ref1234567&vnp_Version=2.1.0',
    'empty values dropped, dates in GMT+7',
  );
  t.equal(
    secureHash(params, 'test_secret'),
    'd8e4eb24f51f157d6898a30ced0539e4f8f6dec834c0ab10d6cf9d768f9785ce8ba2edf1aab9a12d4561b162cde07d9b4088379523e61c642056d8b04095132b',
  );
});

t.test('V4: querydr and refund request hashes', async (t) => {
  const q = {
    vnp_RequestId: 'REQUEST123456',
    vnp_Version: '2.1.0',
    vnp_Command: 'querydr',
    vnp_TmnCode: 'TEST_TMN_CODE',
    vnp_TxnRef: 'TXN123456789',
    vnp_TransactionDate: '20231221103000',
    vnp_CreateDate: '20231221103000',
    vnp_IpAddr: '127.0.0.1',
    vnp_OrderInfo: 'Test order query',
  };
  t.equal(
    fieldsHash(q, QUERY_REQUEST_FIELDS, 'test_secret'),
    'ac23f7e0db3fc8bc6dc83350725b891aa921ec7a83d1a370978d314457eeda176ff26a87bd4e13dc896c24890238b29fadf033080a07aa52abafa830cd2eb565',
  );
  const r = {
    vnp_RequestId: 'REFUND123456',
    vnp_Version: '2.1.0',
    vnp_Command: 'refund',
    vnp_TmnCode: 'TEST_TMN_CODE',
    vnp_TransactionType: '02',
    vnp_TxnRef: 'TXN123456789',
    vnp_Amount: '1000000',
    vnp_TransactionNo: '14422574',
    vnp_TransactionDate: '20231221103000',
    vnp_CreateBy: 'merchant_user',
    vnp_CreateDate: '20231221103000',
    vnp_IpAddr: '127.0.0.1',
    vnp_OrderInfo: 'Test refund order',
  };
  t.equal(
    fieldsHash(r, REFUND_REQUEST_FIELDS, 'test_secret'),
    '1b0d3f82bc64cda12af250a284e72895b965ad745fef5a5b4f2b0ab50142e0089598fd9fd28e73d1c4ede96932996c3b08b4e9ab8a02fa5e88ecc555afba9a33',
  );
  t.equal(pipeHash(['a', undefined, null, 3], 'k'), hmac512('k', 'a|||3'), 'missing values are empty');
});

t.test('formats and outcomes', async (t) => {
  t.equal(fromVnpAmount('1000000'), 10_000);
  t.equal(fromVnpAmount('1000050'), undefined, 'not a whole number of VND');
  t.equal(fromVnpAmount('-100'), undefined);
  t.equal(fromVnpAmount('1e5'), undefined);
  t.equal(parseVnpDate('20240521091806')?.toISOString(), '2024-05-21T02:18:06.000Z');
  t.equal(parseVnpDate('2024-05-21'), undefined);
  t.equal(paymentOutcome('00', '00'), 'succeeded');
  t.equal(paymentOutcome('00', '02'), 'unknown', 'success needs both codes');
  t.equal(paymentOutcome('24', '02'), 'cancelled');
  t.equal(paymentOutcome('51', '02'), 'failed');
  t.equal(paymentOutcome('07', '00'), 'unknown', 'suspicious but debited is not a failure');
  t.equal(paymentOutcome('XX', '02'), 'unknown', 'an unknown code is unknown, never failed');
  t.equal(paymentOutcome('00', '01'), 'pending');
});
