// Sends one corpus case to one receiver, the way the case says (dcmtk storescu or the raw sender), and
// reads the receiver's verdict from what the sender saw: stored (a success or warning status) or refused
// (a failure status, a rejected presentation context or association, an abort).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isStoredStatus } from '@dicomflow/dicom';
import { rawStoreScu, storescu } from '@dicomflow/test-helpers';
import type { CorpusCase } from './corpus.js';

export interface Verdict {
  readonly stored: boolean;
  /** The status or error as the sender reported it. */
  readonly detail: string;
}

const RESPONSE = /Received Store Response \(([^)]*)\)/;
/** storescu's own failure lines (F: fatal, E: error), e.g. "No Acceptable Presentation Contexts". */
const FAILURE = /^[FE]: (.*)$/m;

/** Sends `c` to `host:port` (called AE `calledAe`) in an association of its own. */
export async function sendCase(c: CorpusCase, port: number, calledAe: string): Promise<Verdict> {
  if (c.sender === 'raw') {
    const { associated, statuses } = await rawStoreScu({ port, calledAe, files: [c.file] });
    const status = statuses[0] ?? null;
    if (!associated) return { stored: false, detail: 'association rejected' };
    if (status === null) return { stored: false, detail: 'no response (aborted)' };
    return { stored: isStoredStatus(status), detail: `status 0x${status.toString(16).padStart(4, '0')}` };
  }
  const result = await storescu({
    port,
    calledAe,
    files: [c.file],
    extraArgs: ['-v', ...(c.storescuArgs ?? [])],
    propose: c.propose ?? 'file',
  });
  const output = `${result.stdout}\n${result.stderr}`;
  const response = RESPONSE.exec(output)?.[1];
  if (response !== undefined) return { stored: /^(Success|Warning)/.test(response), detail: response };
  return { stored: false, detail: FAILURE.exec(output)?.[1] ?? `storescu exited ${result.code}` };
}

/** The file dcmtk's storescp wrote for an instance (it names files `<modality>.<SOP Instance UID>`). */
export async function dcmtkStoredFile(dir: string, sopInstanceUid: string): Promise<string | undefined> {
  const name = (await readdir(dir)).find((n) => n.endsWith(`.${sopInstanceUid}`));
  return name === undefined ? undefined : join(dir, name);
}
