import { appendFile, chmod, chown, copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
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

/** SSL for {@link startPostgresCluster}: the server's PEM files (copied into the cluster's folder). */
export interface PostgresSslOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA of client certificates (ssl_ca_file); absent = clients are not asked for one. */
  readonly caFile?: string;
  /** With `caFile`: a client without a certificate of that CA is refused (`clientcert=verify-ca`). */
  readonly requireClientCert?: boolean;
}

/** What {@link startPostgresCluster} sets up beyond the defaults. */
export interface PostgresClusterOptions {
  /**
   * ssl = on with these files, and a pg_hba.conf that takes TCP connections over SSL only (`hostssl ...
   * trust`, `hostnossl ... reject`), so a plaintext client is refused.
   */
  readonly ssl?: PostgresSslOptions;
}

/** pg_hba.conf of an SSL-only cluster: the Unix socket (for pg_ctl) and SSL over TCP; TCP without SSL refused. */
function sslOnlyHba(requireClientCert: boolean): string {
  const method = requireClientCert ? 'trust clientcert=verify-ca' : 'trust';
  return [
    'local all all trust',
    `hostssl all all 127.0.0.1/32 ${method}`,
    `hostssl all all ::1/128 ${method}`,
    'hostnossl all all 127.0.0.1/32 reject',
    'hostnossl all all ::1/128 reject',
    '',
  ].join('\n');
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
export async function startPostgresCluster(
  database = 'dicomflow_faults',
  options: PostgresClusterOptions = {},
): Promise<PostgresCluster> {
  const bin = await postgresBin();
  const dir = await mkdtemp(join(tmpdir(), 'dicomflow-pg-'));
  const data = join(dir, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  let owner: { uid: number; gid: number } | undefined;
  if (asRoot) {
    const id = await runCommand('id', ['-u', 'postgres']);
    const gid = await runCommand('id', ['-g', 'postgres']);
    owner = { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
    await chown(dir, owner.uid, owner.gid);
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
  if (options.ssl) await enableSsl(data, options.ssl, owner);
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
  // Over the Unix socket (in `dir`), which takes no certificate even when TCP demands one.
  await runCommand('psql', [
    '-h',
    options.ssl?.requireClientCert === true ? dir : '127.0.0.1',
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

/** Copies the server's files into `data` (the key readable by its owner only, as PostgreSQL demands) and turns SSL on. */
async function enableSsl(
  data: string,
  ssl: PostgresSslOptions,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  const files: [string, string][] = [
    [ssl.certFile, 'server.crt'],
    [ssl.keyFile, 'server.key'],
    ...(ssl.caFile === undefined ? [] : [[ssl.caFile, 'root.crt'] as [string, string]]),
  ];
  for (const [from, name] of files) {
    const to = join(data, name);
    await copyFile(from, to);
    await chmod(to, 0o600);
    if (owner) await chown(to, owner.uid, owner.gid);
  }
  await appendFile(
    join(data, 'postgresql.conf'),
    [
      '',
      'ssl = on',
      "ssl_cert_file = 'server.crt'",
      "ssl_key_file = 'server.key'",
      ...(ssl.caFile === undefined ? [] : ["ssl_ca_file = 'root.crt'"]),
      "ssl_min_protocol_version = 'TLSv1.2'",
      '',
    ].join('\n'),
  );
  await writeFile(
    join(data, 'pg_hba.conf'),
    sslOnlyHba(ssl.caFile !== undefined && ssl.requireClientCert === true),
  );
  if (owner) await chown(join(data, 'pg_hba.conf'), owner.uid, owner.gid);
}
