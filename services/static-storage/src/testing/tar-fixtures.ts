import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';

/** A tar made by a test: its path, size and sha256. */
export interface TarFixture {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/** Writes a tar of `files` (member name -> content) to `path`. */
export async function writeTar(path: string, files: Record<string, Buffer | string>): Promise<TarFixture> {
  const archive = pack();
  for (const [name, content] of Object.entries(files)) archive.entry({ name }, content);
  archive.finalize();
  await pipeline(archive, createWriteStream(path));
  const hash = createHash('sha256');
  const content = await readFile(path);
  hash.update(content);
  return { path, size: content.length, sha256: hash.digest('hex') };
}

/** A tar of one member of `bytes` random bytes (model weights stand-in). */
export function writeRandomTar(path: string, bytes = 64 * 1024): Promise<TarFixture> {
  return writeTar(path, { 'weights.bin': randomBytes(bytes) });
}
