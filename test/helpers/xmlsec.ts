/**
 * Independent verification with Debian's xmlsec1 (a C implementation, not ours). `.ci/run`
 * installs it; without it the tests that need it fail (they never skip).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface XmlsecResult {
  ok: boolean;
  output: string;
}

/**
 * `xmlsec1 --verify --id-attr:Id <data element> --trusted-pem <anchor>` with the signature's own
 * time as the verification time (certificates are checked as of signing). Fails (never skips)
 * when xmlsec1 is missing.
 */
export async function xmlsecVerify(xml: string, opts: { dataElement: string; trustedPems: string[]; verificationTime?: string }): Promise<XmlsecResult> {
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
      execFile('xmlsec1', args, { encoding: 'utf8' }, (err, stdout, stderr) => resolve({
        ok: !err, output: `${stdout}${stderr}${(err as NodeJS.ErrnoException | null)?.code === 'ENOENT' ? 'xmlsec1 is not installed (apt-get install xmlsec1; .ci/run does it)' : ''}`,
      }));
    });
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}
