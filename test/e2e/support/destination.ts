import { join } from 'node:path';
import { freePort, startDcmtkStorescp, type RunningProcess } from '@dicomflow/test-helpers';

/** A DICOM destination of a test: dcmtk's storescp (AE title DEST) and the folder it writes to. */
export interface DcmtkDestination {
  readonly process: RunningProcess;
  readonly port: number;
  readonly dir: string;
}

/**
 * Starts dcmtk's storescp as AE title DEST on a free port (or `opts.port`), writing into
 * `<work>/<opts.folder ?? 'destination'>`, with the TCP_NODELAY shim `shim` (Debian's dcmtk would wait out
 * a delayed ACK per instance otherwise).
 */
export async function startDestination(
  work: string,
  shim: string,
  opts: { readonly port?: number; readonly folder?: string } = {},
): Promise<DcmtkDestination> {
  const port = opts.port ?? (await freePort());
  const dir = join(work, opts.folder ?? 'destination');
  const process_ = await startDcmtkStorescp({
    port,
    outDir: dir,
    aeTitle: 'DEST',
    env: { ...process.env, LD_PRELOAD: shim },
  });
  return { process: process_, port, dir };
}
