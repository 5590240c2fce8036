import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '@dicomflow/test-helpers';

/** A STOW-RS body: each Part-10 file a part of its own, `application/dicom`. */
export function multipartRelated(files: readonly Buffer[], boundary: string): Buffer {
  const pieces: Buffer[] = [];
  for (const file of files) {
    pieces.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1'), file);
    pieces.push(Buffer.from('\r\n', 'latin1'));
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return Buffer.concat(pieces);
}

/** What curl got back. */
export interface CurlAnswer {
  readonly status: number;
  /** Response header fields, names in lower case (the last of each). */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
  readonly stderr: string;
}

export interface CurlPost {
  readonly url: string;
  readonly body: Buffer;
  /** Request header lines, `Name: value`. */
  readonly headers: readonly string[];
  /** Folder for the body, header and answer files. */
  readonly work: string;
  /** Send the body chunked (no Content-Length). */
  readonly chunked?: boolean;
  /** The local address to connect from (curl's --interface). */
  readonly from?: string;
}

let count = 0;

/** POSTs `body` with the real curl binary (the body from a file, so every byte goes as it is). */
export async function curlPost(post: CurlPost): Promise<CurlAnswer> {
  const stem = join(post.work, `curl-${process.pid}-${++count}`);
  await writeFile(`${stem}.body`, post.body);
  const args = ['-sS', '-X', 'POST', '-o', `${stem}.answer`, '-D', `${stem}.headers`, '-w', '%{http_code}'];
  for (const header of post.headers) args.push('-H', header);
  // Without this, curl waits for "100 Continue" before sending a body over 1 MiB.
  args.push('-H', 'Expect:');
  if (post.chunked) args.push('-H', 'Transfer-Encoding: chunked');
  if (post.from !== undefined) args.push('--interface', post.from);
  args.push('--data-binary', `@${stem}.body`, post.url);
  const result = await runCommand('curl', args, { timeoutMs: 120_000 });
  const headerText = await readFile(`${stem}.headers`, 'latin1').catch(() => '');
  const headers = new Map<string, string>();
  for (const line of headerText.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return {
    status: Number(result.stdout.trim()),
    headers,
    body: await readFile(`${stem}.answer`, 'utf8').catch(() => ''),
    stderr: result.stderr,
  };
}
