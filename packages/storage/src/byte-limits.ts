import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { StorageError, type StorageErrorContext } from './storage-error.js';

/**
 * A pass-through that fails unless exactly `size` bytes go through it. An HTTP body with a declared
 * Content-Length must not be shorter (the server would wait for the rest) or longer (the surplus would be
 * read as the next request), so the mismatch is turned into an error that aborts the upload.
 */
export function exactSize(size: number, context: StorageErrorContext): Transform {
  let seen = 0;
  const mismatch = (): StorageError =>
    new StorageError(
      'permanent',
      `stream for ${context.key ?? '?'} is not the declared ${size} bytes (got ${seen})`,
      {
        ...context,
        code: 'SizeMismatch',
      },
    );
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > size) {
        callback(mismatch());
        return;
      }
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      callback(seen === size ? null : mismatch());
    },
  });
}

/**
 * Reads a whole stream into memory, refusing (and destroying the stream) as soon as it exceeds `maxBytes`,
 * so a mistaken key can never pull a huge object into memory.
 */
export async function readAtMost(
  stream: Readable,
  maxBytes: number,
  context: StorageErrorContext,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const piece = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += piece.length;
    if (total > maxBytes) {
      stream.destroy();
      throw new StorageError('permanent', `object ${context.key ?? '?'} is larger than ${maxBytes} bytes`, {
        ...context,
        code: 'ObjectTooLarge',
      });
    }
    chunks.push(piece);
  }
  return Buffer.concat(chunks, total);
}
