// Removes what a stack run under an exchange and queue prefix of its own made (end-to-end tests and
// benchmarks): its queues, exchanges, S3 buckets and database schemas, all named by its environment.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import pg from 'pg';
import { createStorage } from '@dicomflow/storage';
import { removeBucketAndObjects } from '@dicomflow/storage/testing';

const run = promisify(execFile);
const BUCKET_KEYS = ['S3_BUCKET_INCOMING', 'S3_BUCKET_RUNS', 'S3_BUCKET_STATIC'];
const SCHEMA_KEYS = ['SCHEDULER_DB_SCHEMA', 'TRACKER_DB_SCHEMA', 'SENDER_DB_SCHEMA'];

/**
 * Deletes every queue whose name starts with `RABBIT_QUEUE_PREFIX` (work, retry and dead-letter queues,
 * whatever delays the services declared), the exchange `RABBIT_EXCHANGE` and its `.dead` twin, the three
 * buckets and the three database schemas that `env` names. Refuses the unprefixed (production) queues.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {Promise<void>}
 */
export async function removeIsolatedStack(env) {
  const prefix = env.RABBIT_QUEUE_PREFIX ?? '';
  if (prefix === '') throw new Error('refusing to clean up a stack without RABBIT_QUEUE_PREFIX');
  const connection = await amqp.connect({
    protocol: 'amqp',
    hostname: env.RABBIT_HOSTNAME ?? '127.0.0.1',
    port: Number(env.RABBIT_PORT ?? 5672),
    username: env.RABBIT_USERNAME ?? 'guest',
    password: env.RABBIT_PASSWORD ?? 'guest',
  });
  try {
    const channel = await connection.createChannel();
    // AMQP cannot list queues; rabbitmqctl can (on the broker's machine, as the tests and benches run).
    const { stdout } = await run('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', 'name']);
    for (const name of stdout.split('\n').map((line) => line.trim()))
      if (name.startsWith(prefix)) await channel.deleteQueue(name);
    if (env.RABBIT_EXCHANGE) {
      await channel.deleteExchange(env.RABBIT_EXCHANGE);
      await channel.deleteExchange(`${env.RABBIT_EXCHANGE}.dead`);
    }
  } finally {
    await connection.close();
  }
  const storage = createStorage({
    endPoint: env.S3_ENDPOINT ?? '127.0.0.1',
    port: Number(env.S3_PORT ?? 9000),
    useSSL: env.S3_USE_SSL === 'true',
    accessKey: env.S3_ACCESS_KEY ?? '',
    secretKey: env.S3_SECRET_KEY ?? '',
    partSize: Number(env.S3_PART_SIZE ?? 5368709120),
  });
  for (const key of BUCKET_KEYS) if (env[key]) await removeBucketAndObjects(storage, env[key]);
  const client = new pg.Client({
    host: env.DB_HOST,
    port: Number(env.DB_PORT ?? 5432),
    user: env.DB_USER,
    password: env.DB_PASS,
    database: env.DB_NAME,
  });
  await client.connect();
  try {
    for (const key of SCHEMA_KEYS)
      if (env[key]) await client.query(`drop schema if exists "${env[key].replaceAll('"', '""')}" cascade`);
  } finally {
    await client.end();
  }
}
