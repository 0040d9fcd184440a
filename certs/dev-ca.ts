/**
 * The development CA: created on first use in the data directory (FEEGATE_DEV_CA_DIR, default
 * <data dir>/dev-ca) so `npm start` signs receipts with no setup. It issues each tenant a
 * signing certificate shaped like a Vietnamese CA's (CN = unit name, UID=MST:<tax code>).
 * Development only: production never creates nor trusts it. The file name says dev-only; it holds
 * a private key that protects nothing real.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createCa, type CaMaterial } from './x509.js';

export const DEV_CA_FILE = 'dev-ca.dev-only.pem';

function read(file: string): CaMaterial {
  const text = fs.readFileSync(file, 'utf8');
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(text)?.[0];
  if (!cert || !key) throw new Error(`${file} does not hold the dev CA certificate and key`);
  return { certPem: cert + '\n', keyPem: key + '\n' };
}

/**
 * Loads the dev CA from `dir`, creating it if absent. Safe when several processes start at once:
 * the file appears atomically (hard link of a finished temp file) and the loser reads the winner's.
 */
export function loadOrCreateDevCa(dir: string): CaMaterial {
  const file = path.join(dir, DEV_CA_FILE);
  if (fs.existsSync(file)) return read(file);
  fs.mkdirSync(dir, { recursive: true });
  const ca = createCa({
    commonName: 'feegate Development CA (not trusted outside development)',
    organization: 'feegate dev',
    notBefore: new Date('2020-01-01T00:00:00Z'),
    years: 30,
  });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, ca.certPem + ca.keyPem, { mode: 0o600 });
  try {
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.unlinkSync(tmp);
  }
  fs.writeFileSync(path.join(dir, 'dev-ca-cert.pem'), read(file).certPem, { mode: 0o644 });
  return read(file);
}
