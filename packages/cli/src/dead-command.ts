import {
  connectForDeadLetters,
  listDeadLetters,
  replayDeadLetters,
  suiteQueueList,
  type DeadLetter,
} from '@dicomflow/broker';
import { brokerConfigFrom, loadConfig } from '@dicomflow/config';
import { ExitCode, type CliOutput } from './cli-output.js';

/** What `dicomflow dead` works on: the suite's broker and queue prefix, read as the services read them. */
export interface DeadTarget {
  readonly env: NodeJS.ProcessEnv;
}

/** What `dicomflow dead replay` puts back: the given message ids, a queue's dead letters, or all. */
export type ReplaySelection =
  | { readonly kind: 'ids'; readonly ids: readonly string[] }
  | { readonly kind: 'queue'; readonly queue: string }
  | { readonly kind: 'all' };

/**
 * `dicomflow dead list`: every dead letter of the suite's queues (RABBIT_* and RABBIT_QUEUE_PREFIX from
 * conf.d and the environment, as the services read them), one line each: queue, message id, reason, run,
 * age, error. `json` prints them as one JSON array instead.
 */
export async function deadListCommand(
  target: DeadTarget,
  json: boolean,
  output: CliOutput,
  now: () => number = Date.now,
): Promise<ExitCode> {
  const { connection, queues } = await open(target);
  try {
    const letters = await listDeadLetters(connection, queues);
    if (json) {
      output.out(JSON.stringify(letters, null, 2));
      return ExitCode.ok;
    }
    if (letters.length === 0) {
      output.out('no dead letters');
      return ExitCode.ok;
    }
    for (const letter of letters) output.out(formatLetter(letter, now()));
    output.out(`${letters.length} dead letter(s); put them back with: dicomflow dead replay <id>...`);
    return ExitCode.ok;
  } finally {
    await connection.close();
  }
}

/**
 * `dicomflow dead replay`: puts the chosen dead letters back on the queue each died in, with fresh
 * attempts (after the cause was fixed). Exit code 1 when an id given was not found.
 */
export async function deadReplayCommand(
  target: DeadTarget,
  selection: ReplaySelection,
  output: CliOutput,
): Promise<ExitCode> {
  const { connection, queues, prefix } = await open(target);
  try {
    const scope =
      selection.kind === 'queue'
        ? queues.filter((queue) => queue === selection.queue || queue === `${prefix}${selection.queue}`)
        : queues;
    if (selection.kind === 'queue' && scope.length === 0) {
      output.err(`dicomflow: no suite queue is called ${selection.queue}; queues: ${queues.join(', ')}`);
      return ExitCode.usage;
    }
    const wanted = selection.kind === 'ids' ? new Set(selection.ids) : undefined;
    const replayed = await replayDeadLetters(connection, scope, (letter) => wanted?.has(letter.id) ?? true);
    for (const letter of replayed) output.out(`put back ${letter.id} on ${letter.queue} (${letter.type})`);
    output.out(`${replayed.length} dead letter(s) put back`);
    const missing = [...(wanted ?? [])].filter((id) => !replayed.some((letter) => letter.id === id));
    for (const id of missing) output.err(`dicomflow: no dead letter has the id ${id}`);
    return missing.length > 0 ? ExitCode.problems : ExitCode.ok;
  } finally {
    await connection.close();
  }
}

async function open(target: DeadTarget): Promise<{
  connection: Awaited<ReturnType<typeof connectForDeadLetters>>;
  queues: string[];
  prefix: string;
}> {
  // The common keys (broker, exchange, queue prefix) are the same for every service.
  const config = loadConfig('fingerprinter', { env: target.env });
  const prefix = config.RABBIT_QUEUE_PREFIX;
  const connection = await connectForDeadLetters(brokerConfigFrom(config));
  return { connection, queues: suiteQueueList(prefix).map((queue) => queue.name), prefix };
}

function formatLetter(letter: DeadLetter, now: number): string {
  const age = letter.deadAt === undefined ? '?' : formatAge(now - Date.parse(letter.deadAt));
  const error = letter.error.split('\n')[0]?.slice(0, 160) ?? '';
  return [letter.queue, letter.id, letter.reason, letter.runId ?? '-', age, error].join('\t');
}

function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}
