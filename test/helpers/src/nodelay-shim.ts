import { createHash } from 'node:crypto';
import { access, mkdir, readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChecked } from './run-command.js';

/** The shim's C source; it lives with the ingest bench, which is its main user. */
export const NODELAY_SOURCE = fileURLToPath(new URL('../../../bench/ingest/nodelay.c', import.meta.url));

/**
 * Compiles (once per source version, with gcc) the LD_PRELOAD shim that sets TCP_NODELAY on every TCP
 * socket a process connects or accepts, and returns the .so path. Cached in `outDir` (default: the OS
 * temp dir). Use as `env: { ...process.env, LD_PRELOAD: await nodelayShimPath() }` for dcmtk tools.
 */
export async function nodelayShimPath(outDir: string = tmpdir()): Promise<string> {
  const source = await readFile(NODELAY_SOURCE);
  const version = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const target = join(outDir, `dicomflow-nodelay-${version}.so`);
  try {
    await access(target);
    return target;
  } catch {
    // not built yet
  }
  await mkdir(outDir, { recursive: true });
  // Build under a unique name and rename: concurrent callers never see a half-written library.
  const partial = `${target}.${process.pid}.${Date.now()}.tmp`;
  await runChecked('gcc', ['-shared', '-fPIC', '-O2', '-o', partial, NODELAY_SOURCE, '-ldl']);
  await rename(partial, target);
  return target;
}
