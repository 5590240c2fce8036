import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandFailedError } from './errors.js';
import { runCommand, type CommandResult } from './run-command.js';
import { freePort } from './storescp-process.js';

/** A PostgreSQL cluster of a test's own (trust authentication, user `postgres`), which it may stop. */
export interface PostgresCluster {
  readonly port: number;
  /** The database made for the test. */
  readonly database: string;
  /** `pg_ctl stop -m fast`, as an operator's stop would; resolves once it is down. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

async function postgresBin(): Promise<string> {
  const versions = (await readdir('/usr/lib/postgresql')).sort((a, b) => Number(b) - Number(a));
  const newest = versions[0];
  if (newest === undefined) throw new Error('no PostgreSQL in /usr/lib/postgresql');
  return join('/usr/lib/postgresql', newest, 'bin');
}

/**
 * Starts a PostgreSQL cluster of its own with Debian's binaries on a free port, beside the machine's
 * (which is never touched), with one database `database`. As root, it runs as the `postgres` user
 * (PostgreSQL refuses root).
 */
export async function startPostgresCluster(database = 'dicomflow_faults'): Promise<PostgresCluster> {
  const bin = await postgresBin();
  const dir = await mkdtemp(join(tmpdir(), 'dicomflow-pg-'));
  const data = join(dir, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const id = await runCommand('id', ['-u', 'postgres']);
    const gid = await runCommand('id', ['-g', 'postgres']);
    await chown(dir, Number(id.stdout.trim()), Number(gid.stdout.trim()));
  }
  const run = async (command: string, args: readonly string[]): Promise<CommandResult> => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, command), ...args]]
      : [join(bin, command), [...args]];
    const result = await runCommand(file, argv, { timeoutMs: 120_000 });
    if (result.code !== 0) {
      throw new CommandFailedError(command, args, result.code, result.stderr || result.stdout);
    }
    return result;
  };
  await run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const start = async (): Promise<void> => {
    await run('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'log'),
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
  };
  const stop = async (): Promise<void> => {
    await run('pg_ctl', ['-D', data, '-w', '-m', 'fast', 'stop']).catch(() => undefined);
  };
  await start();
  await runCommand('psql', [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'postgres',
    '-c',
    `CREATE DATABASE ${database}`,
  ]);
  return {
    port,
    database,
    stop,
    start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
