/**
 * Independent verification with Debian's xmlsec1 (a C implementation, not ours). `.ci/run`
 * installs it. On a machine without it the checks that need it say they are skipped and why;
 * under CI=true a missing xmlsec1 is a failure, never a skip.
 */
import { execFile, execFileSync } from 'node:child_process';
import type { Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface XmlsecResult {
  ok: boolean;
  output: string;
}

let missing: string | null | undefined;
/** Why xmlsec1 cannot be used here, or null when it can. */
export function xmlsecMissing(): string | null {
  if (missing === undefined) {
    try {
      execFileSync('xmlsec1', ['--version'], { stdio: 'ignore' });
      missing = null;
    } catch {
      missing = 'xmlsec1 is not installed (apt-get install xmlsec1; .ci/run does it)';
    }
  }
  return missing;
}

/**
 * True when the test may go on with xmlsec1. Without it: a failure under CI=true, otherwise a
 * skip that says why. Call before every xmlsec1 assertion.
 */
export function xmlsecOrSkip(t: Test, what: string): boolean {
  const why = xmlsecMissing();
  if (!why) return true;
  if (process.env.CI === 'true') t.fail(`${what}: ${why} (CI=true: this is a failure, not a skip)`);
  else t.pass(what, { skip: why });
  return false;
}

/**
 * `xmlsec1 --verify --id-attr:Id <data element> --trusted-pem <anchor>` with the signature's own
 * time as the verification time (certificates are checked as of signing). Answers not ok when
 * xmlsec1 is missing: callers check xmlsecOrSkip first.
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
      execFile('xmlsec1', args, { encoding: 'utf8' }, (err, stdout, stderr) =>
        resolve({
          ok: !err,
          output: `${stdout}${stderr}${(err as NodeJS.ErrnoException | null)?.code === 'ENOENT' ? 'xmlsec1 is not installed (apt-get install xmlsec1; .ci/run does it)' : ''}`,
        }),
      );
    });
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}
