import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { BEARER_TOKEN_PATTERN, TOKEN_FILE_PATTERN } from '@dicomflow/messages';
import { StowError } from './stow-error.js';

/** How a DICOMweb destination authenticates: a token in the flow, or a file in SENDER_TOKEN_DIR. */
export interface TokenSource {
  readonly token?: string;
  readonly token_file?: string;
}

/** A token file is a few hundred bytes; anything much larger is the wrong file. */
const MAX_TOKEN_FILE_BYTES = 16 * 1024;

const BEARER_TOKEN = new RegExp(BEARER_TOKEN_PATTERN);
const TOKEN_FILE = new RegExp(TOKEN_FILE_PATTERN);

/**
 * The bearer token of a DICOMweb destination: its `token`, or the content of `token_file` in `tokenDir`
 * (surrounding white space, such as the final line break, dropped), read at every call so a rotated token is
 * picked up by the next delivery. Undefined when the destination has neither. A file that is missing,
 * unreadable, empty or not a bearer token is a permanent failure of the target (reason `error`): retrying
 * will not create it. The token itself never appears in an error.
 */
export async function readBearerToken(source: TokenSource, tokenDir: string): Promise<string | undefined> {
  if (source.token !== undefined) return source.token;
  const name = source.token_file;
  if (name === undefined) return undefined;
  const failed = (why: string, cause?: unknown): StowError =>
    new StowError(`token_file ${name} (in SENDER_TOKEN_DIR ${tokenDir}): ${why}`, {
      transient: false,
      code: 'token',
      reason: 'error',
      cause,
    });
  // The flow schema allows a plain file name only; checked again since the message may come from anywhere.
  if (!TOKEN_FILE.test(name)) throw failed('is not a plain file name');
  let text: string;
  try {
    const handle = await open(join(tokenDir, name), 'r');
    try {
      const buffer = Buffer.alloc(MAX_TOKEN_FILE_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_TOKEN_FILE_BYTES) throw failed(`is larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
      text = buffer.subarray(0, bytesRead).toString('utf8').trim();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof StowError) throw err;
    throw failed(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err);
  }
  if (text === '') throw failed('is empty');
  if (!BEARER_TOKEN.test(text))
    throw failed('does not hold a bearer token (letters, digits and - . _ ~ + /, then = padding)');
  return text;
}
