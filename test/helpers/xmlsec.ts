/**
 * Independent verification with Debian's xmlsec1 (a C implementation, not ours). `.ci/run`
 * installs it; without it the tests that need it fail (they never skip).
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface XmlsecResult {
  ok: boolean;
  output: string;
}

export function xmlsecAvailable(): boolean {
  return spawnSync('xmlsec1', ['--version']).status === 0;
}

/**
 * `xmlsec1 --verify --id-attr:Id <data element> --trusted-pem <anchor>` with the signature's own
 * time as the verification time (certificates are checked as of signing).
 */
export function xmlsecVerify(xml: string, opts: { dataElement: string; trustedPems: string[]; verificationTime?: string }): XmlsecResult {
  if (!xmlsecAvailable()) throw new Error('xmlsec1 is not installed (apt-get install xmlsec1; .ci/run does it)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-xmlsec-'));
  try {
    const file = path.join(dir, 'receipt.xml');
    fs.writeFileSync(file, xml);
    const args = ['--verify', '--id-attr:Id', opts.dataElement, '--enabled-reference-uris', 'same-doc'];
    opts.trustedPems.forEach((pem, i) => {
      const f = path.join(dir, `anchor-${i}.pem`);
      fs.writeFileSync(f, pem);
      args.push('--trusted-pem', f);
    });
    if (opts.verificationTime) args.push('--verification-time', opts.verificationTime.replace('T', ' '));
    args.push(file);
    const r = spawnSync('xmlsec1', args, { encoding: 'utf8' });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Async variant, for checking many receipts in parallel. */
export async function xmlsecVerifyAsync(xml: string, opts: { dataElement: string; trustedPems: string[]; verificationTime?: string }): Promise<XmlsecResult> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'feegate-xmlsec-'));
  try {
    const file = path.join(dir, 'receipt.xml');
    await fs.promises.writeFile(file, xml);
    const args = ['--verify', '--id-attr:Id', opts.dataElement, '--enabled-reference-uris', 'same-doc'];
    for (const [i, pem] of opts.trustedPems.entries()) {
      const f = path.join(dir, `anchor-${i}.pem`);
      await fs.promises.writeFile(f, pem);
      args.push('--trusted-pem', f);
    }
    if (opts.verificationTime) args.push('--verification-time', opts.verificationTime.replace('T', ' '));
    args.push(file);
    return await new Promise((resolve) => {
      execFile('xmlsec1', args, { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ ok: !err, output: `${stdout}${stderr}` }));
    });
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}
