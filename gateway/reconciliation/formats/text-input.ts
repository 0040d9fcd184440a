/**
 * Bytes → text for the text formats (XML, MT940, CSV), streaming, with the encoding policy:
 * UTF-8 (a BOM is stripped) unless the caller declares `windows-1258` (decoded with iconv-lite, then
 * NFC-composed: Windows-1258 writes Vietnamese tones as combining marks). Anything else (UTF-16, a
 * stray Windows-1258 byte in a file said to be UTF-8, binary with NUL bytes) is refused with
 * FEEGATE_ERR_STATEMENT_ENCODING and the line it was found on; never a guess.
 */
import type { Readable } from 'node:stream';
import iconv from 'iconv-lite';
import { StatementError } from '../statement-line.js';

export type TextEncoding = 'utf-8' | 'windows-1258';

interface Decoder {
  write(b: Buffer): string;
  end(): string;
}

function decoderFor(encoding: TextEncoding): Decoder {
  if (encoding === 'windows-1258') {
    const d = iconv.getDecoder('windows1258');
    return { write: (b) => d.write(b), end: () => d.end() ?? '' };
  }
  const d = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  return { write: (b) => d.decode(b, { stream: true }), end: () => d.decode() };
}

/** Yields decoded text chunks; counts lines so an encoding error says where. */
export async function* decodeText(input: Readable, encoding: TextEncoding = 'utf-8'): AsyncGenerator<string> {
  const dec = decoderFor(encoding);
  let first = true;
  let line = 1;
  const check = (text: string): string => {
    const bad = encoding === 'utf-8' ? text.search(/[\uFFFD\u0000]/) : text.indexOf('\u0000');
    if (bad >= 0) {
      const before = text.slice(0, bad);
      const at = line + (before.match(/\n/g)?.length ?? 0);
      throw new StatementError(
        'FEEGATE_ERR_STATEMENT_ENCODING',
        encoding === 'utf-8'
          ? 'the file is not valid UTF-8 (a Windows-1258 or binary file? declare its encoding, or export as UTF-8)'
          : 'the file contains NUL bytes: it is not text',
        at,
        before.length - before.lastIndexOf('\n'),
      );
    }
    line += text.match(/\n/g)?.length ?? 0;
    return encoding === 'windows-1258' ? text.normalize('NFC') : text;
  };
  for await (const chunk of input) {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
    if (first && buf.length > 0) {
      first = false;
      if ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff)) {
        throw new StatementError('FEEGATE_ERR_STATEMENT_ENCODING', 'the file is UTF-16; export it as UTF-8', 1, 1);
      }
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
    }
    const text = check(dec.write(buf));
    if (text) yield text;
  }
  const tail = check(dec.end());
  if (tail) yield tail;
}

/**
 * Splits decoded text into lines (CRLF, LF or CR; a missing final newline is fine) with their
 * 1-based numbers. A line longer than `maxLine` is refused so memory stays bounded.
 */
export async function* textLines(chunks: AsyncIterable<string>, maxLine = 100_000): AsyncGenerator<{ text: string; no: number }> {
  let pending = '';
  let no = 0;
  let lastCr = false;
  for await (const chunk of chunks) {
    let s = chunk;
    if (lastCr && s.startsWith('\n')) s = s.slice(1);
    lastCr = false;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 10 || c === 13) {
        yield { text: pending + s.slice(start, i), no: ++no };
        pending = '';
        if (c === 13) {
          if (i + 1 < s.length) {
            if (s.charCodeAt(i + 1) === 10) i++;
          } else lastCr = true;
        }
        start = i + 1;
      }
    }
    pending += s.slice(start);
    if (pending.length > maxLine) throw new StatementError('FEEGATE_ERR_STATEMENT_TOO_COMPLEX', `a line is longer than ${maxLine} characters`, no + 1);
  }
  if (pending.length > 0) yield { text: pending, no: no + 1 };
}
