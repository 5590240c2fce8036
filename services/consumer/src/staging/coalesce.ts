import { Transform } from 'node:stream';

/** Chunk size the consumer hands the Docker engine, S3 and the spool file. */
export const COALESCED_CHUNK_BYTES = 1024 * 1024;

/**
 * Joins small chunks (tar headers, 16-64 KiB reads) into chunks of about `bytes`: each write into an
 * Engine API or S3 request is a syscall and a chunked-encoding frame, and with 1 MiB chunks a 105 MB input
 * reached the engine about a third faster on the test machine. At most one chunk is held.
 */
export function coalesce(bytes = COALESCED_CHUNK_BYTES): Transform {
  let parts: Buffer[] = [];
  let held = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      parts.push(chunk);
      held += chunk.length;
      if (held < bytes) {
        done();
        return;
      }
      const joined = Buffer.concat(parts, held);
      parts = [];
      held = 0;
      done(null, joined);
    },
    flush(done) {
      done(null, held > 0 ? Buffer.concat(parts, held) : undefined);
    },
  });
}
