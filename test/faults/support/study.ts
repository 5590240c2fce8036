// Studies sent with dcmtk storescu, and what arrived at a dcmtk destination: the two ends the fault tests'
// invariant compares.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  generateCtSeries,
  readFileMeta,
  runCommand,
  storescu,
  type StoreScuResult,
} from '@dicomflow/test-helpers';
import { AE_TITLE, type E2eStack } from '../../e2e/support/e2e-stack.js';

/** A study as sent: every instance, and the ones our receiver answered with a success status. */
export interface SentStudy {
  readonly patientId: string;
  /** SOP Instance UID of every instance that was offered. */
  readonly all: readonly string[];
  /** SOP Instance UIDs that got a success (or warning) C-STORE response. */
  readonly accepted: ReadonlySet<string>;
  readonly result: StoreScuResult;
}

/** Writes `count` CT instances of patient `patientId` into `dir` (small images unless `rows` says). */
export async function makeStudy(
  dir: string,
  patientId: string,
  count: number,
  rows = 64,
): Promise<{ files: string[]; uids: Map<string, string> }> {
  const files = await generateCtSeries(dir, count, { patientId, rows, columns: rows });
  const uids = new Map<string, string>();
  for (const file of files) uids.set(file, (await readFileMeta(file)).sopInstanceUid);
  return { files, uids };
}

/**
 * Sends `files` to the stack's receiver in one association with storescu -v and reads, per file, whether
 * it got a success response: dcmtk prints "Sending file: <path>" and then the response it received.
 */
export async function sendStudy(
  stack: E2eStack,
  study: { files: string[]; uids: Map<string, string> },
  patientId: string,
  env: NodeJS.ProcessEnv,
): Promise<SentStudy> {
  const result = await storescu({
    port: stack.aePort,
    calledAe: AE_TITLE,
    callingAe: 'FAULT-SCU',
    files: study.files,
    extraArgs: ['-v'],
    env,
    timeoutMs: 300_000,
  });
  const accepted = new Set<string>();
  let current: string | undefined;
  for (const line of `${result.stdout}\n${result.stderr}`.split('\n')) {
    const sending = /Sending file: (.+)$/.exec(line);
    if (sending) current = study.uids.get((sending[1] ?? '').trim());
    else if (current && /Received Store Response \((Success|Warning)/.test(line)) {
      accepted.add(current);
      current = undefined;
    }
  }
  return { patientId, all: [...study.uids.values()], accepted, result };
}

/**
 * How many times each SOP Instance UID of `uids` arrived in `dir` (the destination writes unique file
 * names, so a repeat is a second file).
 */
export async function deliveredCounts(dir: string, uids: readonly string[]): Promise<Map<string, number>> {
  const wanted = new Set(uids);
  const counts = new Map<string, number>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return counts;
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const meta = await readFileMeta(join(dir, name)).catch(() => undefined);
    if (!meta || !wanted.has(meta.sopInstanceUid)) continue;
    counts.set(meta.sopInstanceUid, (counts.get(meta.sopInstanceUid) ?? 0) + 1);
  }
  return counts;
}

/** Messages ready or unacknowledged in every queue whose name starts with `prefix` (rabbitmqctl). */
export async function queueCounts(
  prefix: string,
  node?: string,
): Promise<{ name: string; ready: number; unacked: number }[]> {
  const args = [
    ...(node ? ['-n', node] : []),
    'list_queues',
    '-q',
    '--no-table-headers',
    'name',
    'messages_ready',
    'messages_unacknowledged',
  ];
  const out = await runCommand('rabbitmqctl', args, { timeoutMs: 60_000 });
  if (out.code !== 0) throw new Error(`rabbitmqctl list_queues failed: ${out.stderr}`);
  return out.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length === 3 && (cols[0] ?? '').startsWith(prefix))
    .map(([name, ready, unacked]) => ({
      name: name ?? '',
      ready: Number(ready),
      unacked: Number(unacked),
    }));
}
