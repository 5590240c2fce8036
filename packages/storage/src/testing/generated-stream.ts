import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

const CHUNK_BYTES = 64 * 1024;

/** A stream of `size` random bytes, made on demand, and the SHA-256 of exactly what it produced. */
export interface GeneratedStream {
  readonly stream: Readable;
  /** Resolves once the stream has produced its last byte. */
  readonly sha256: Promise<string>;
}

/**
 * Generates `size` random bytes lazily, so the test itself never holds the object in memory.
 * `beforeChunk` may delay a chunk (e.g. until a proxy has seen the earlier ones go out).
 */
export function generatedStream(
  size: number,
  beforeChunk?: (offset: number) => Promise<void>,
): GeneratedStream {
  const hash = createHash('sha256');
  let offset = 0;
  let resolveDigest: (digest: string) => void = () => undefined;
  const sha256 = new Promise<string>((resolve) => {
    resolveDigest = resolve;
  });
  const stream = new Readable({
    read() {
      if (offset >= size) {
        resolveDigest(hash.digest('hex'));
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(CHUNK_BYTES, size - offset));
      const at = offset;
      offset += chunk.length;
      hash.update(chunk);
      if (beforeChunk === undefined) {
        this.push(chunk);
        return;
      }
      beforeChunk(at).then(
        () => this.push(chunk),
        (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    },
  });
  return { stream, sha256 };
}

/** The SHA-256 of everything a stream yields. */
export async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}
