import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@dicomflow/runtime';
import { testEnvironment } from '@dicomflow/test-helpers';
import { migrate } from './migrate.js';
import { createPool, withTryLock, type Pool } from './pool.js';

const logger = createLogger({ service: 'database-test', level: 'silent' });
const schemas: string[] = [];
let pool: Pool;

function newSchema(): string {
  const schema = `migrate_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  schemas.push(schema);
  return schema;
}

const V1 = 'CREATE TABLE $schema.things (id integer PRIMARY KEY)';
const V2 = 'ALTER TABLE $schema.things ADD COLUMN label text';

async function columns(schema: string, table: string): Promise<string[]> {
  const { rows } = await pool.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2
     ORDER BY ordinal_position`,
    [schema, table],
  );
  return rows.map((r) => r.column_name);
}

async function versions(schema: string): Promise<number[]> {
  const { rows } = await pool.query<{ version: number }>(
    `SELECT version FROM "${schema}".migrations ORDER BY version`,
  );
  return rows.map((r) => r.version);
}

beforeAll(() => {
  const env = testEnvironment();
  pool = createPool(
    {
      host: env.DB_HOST ?? '',
      port: Number(env.DB_PORT),
      database: env.DB_NAME ?? '',
      user: env.DB_USER ?? '',
      password: env.DB_PASS ?? '',
    },
    { applicationName: 'dicomflow-database-test', max: 8 },
    logger,
  );
});

afterAll(async () => {
  for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe('migrate', () => {
  it('creates the schema and applies each version once, also when replicas start together', async () => {
    const schema = newSchema();
    const results = await Promise.all(
      [1, 2, 3].map(() => migrate(pool, { schema, name: 'test', migrations: [V1], logger })),
    );
    expect(results.flat()).toEqual([1]);
    expect(await migrate(pool, { schema, name: 'test', migrations: [V1, V2], logger })).toEqual([2]);
    expect(await columns(schema, 'things')).toEqual(['id', 'label']);
    expect(await versions(schema)).toEqual([1, 2]);
  });

  it('leaves the schema as it was when a version fails', async () => {
    const schema = newSchema();
    await migrate(pool, { schema, name: 'test', migrations: [V1], logger });
    const broken = 'ALTER TABLE $schema.things ADD COLUMN extra text; SELECT 1/0';
    await expect(migrate(pool, { schema, name: 'test', migrations: [V1, broken], logger })).rejects.toThrow(
      /division by zero/,
    );
    expect(await columns(schema, 'things')).toEqual(['id']);
    expect(await versions(schema)).toEqual([1]);
  });

  it('records the versions an earlier mechanism applied without running them again', async () => {
    const schema = newSchema();
    await pool.query(`CREATE SCHEMA "${schema}"`);
    await pool.query(`CREATE TABLE "${schema}".things (id integer PRIMARY KEY)`);
    const applied = await migrate(pool, {
      schema,
      name: 'test',
      migrations: [V1, V2],
      logger,
      adopt: () => Promise.resolve(1),
    });
    expect(applied).toEqual([2]);
    expect(await versions(schema)).toEqual([1, 2]);
  });
});

describe('withTryLock', () => {
  it('runs the work only in the session that got the lock', async () => {
    const key = `test-lock:${randomUUID()}`;
    let inner: unknown;
    const outer = await withTryLock(pool, key, async () => {
      inner = await withTryLock(pool, key, () => Promise.resolve('second'));
      return 'first';
    });
    expect(outer).toEqual({ locked: true, result: 'first' });
    expect(inner).toEqual({ locked: false });
    // Released afterwards.
    expect(await withTryLock(pool, key, () => Promise.resolve(1))).toEqual({ locked: true, result: 1 });
  });
});
