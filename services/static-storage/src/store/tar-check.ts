import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';

/**
 * Why the file at `path` is not a usable tar (the consumer unpacks it into the model container), or
 * `undefined` when its first member header reads. Reads only up to the first member.
 */
export async function tarProblem(path: string): Promise<string | undefined> {
  const reader = extract();
  const firstEntry = new Promise<boolean>((resolve, reject) => {
    reader.once('entry', (_header, stream, next) => {
      stream.resume();
      next();
      resolve(true);
    });
    reader.once('finish', () => {
      resolve(false);
    });
    reader.once('error', reject);
  });
  const source = createReadStream(path);
  // The pipeline is abandoned once the first member is seen: destroying the source ends it.
  const feeding = pipeline(source, reader).catch(() => undefined);
  try {
    const hasEntry = await firstEntry;
    return hasEntry ? undefined : 'the tar holds no files';
  } catch (err) {
    return `not a tar archive (${err instanceof Error ? err.message : String(err)})`;
  } finally {
    source.destroy();
    reader.destroy();
    await feeding;
  }
}
