import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@dicomflow/runtime';
import { newIsolation, testPool } from '../testing/tracker-harness.js';
import { migrate } from './data-source.js';
import { TRACKER_MIGRATIONS } from './migrations.js';

const logger = createLogger({ service: 'tracker-migrations-test', level: 'silent' });
const schemas: string[] = [];
let pool: pg.Pool;

function newSchema(): string {
  const { schema } = newIsolation();
  schemas.push(schema);
  return schema;
}

/** Every column of every table of `schema`, as `table.column type`, in a stable order. */
async function layout(schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ col: string }>(
    `SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
            || ' ' || coalesce(column_default, '') AS col
     FROM information_schema.columns WHERE table_schema = $1 AND table_name <> 'migrations'
     ORDER BY table_name, column_name`,
    [schema],
  );
  return rows.map((r) => r.col);
}

async function versions(schema: string): Promise<number[]> {
  const { rows } = await pool.query<{ version: number }>(
    `SELECT version FROM "${schema}".migrations ORDER BY version`,
  );
  return rows.map((r) => r.version);
}

beforeAll(() => {
  pool = testPool();
});

afterAll(async () => {
  for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe('tracker migrations', () => {
  it('take over a schema TypeORM migrated: its tables and rows stay, each version is recorded once', async () => {
    const fresh = newSchema();
    await migrate(pool, fresh, logger);

    // What TypeORM's runner left: the first two versions' tables and its own history table.
    const old = newSchema();
    await pool.query(`CREATE SCHEMA "${old}"`);
    for (const script of TRACKER_MIGRATIONS.slice(0, 2))
      await pool.query(script.replaceAll('$schema', `"${old}"`));
    await pool.query(
      `CREATE TABLE "${old}".migrations (id SERIAL PRIMARY KEY, "timestamp" bigint NOT NULL, name varchar NOT NULL)`,
    );
    await pool.query(
      `INSERT INTO "${old}".migrations ("timestamp", name)
       VALUES (1763900000000, 'Initial1763900000000'), (1796600000000, 'SendRetries1796600000000')`,
    );
    await pool.query(
      `INSERT INTO "${old}".runs (id, ts) VALUES ('00000000-0000-4000-8000-000000000001', now())`,
    );

    await migrate(pool, old, logger);
    await migrate(pool, old, logger);

    expect(await versions(old)).toEqual(TRACKER_MIGRATIONS.map((_, n) => n + 1));
    expect(await layout(old)).toEqual(await layout(fresh));
    const { rows } = await pool.query(`SELECT id FROM "${old}".runs`);
    expect(rows).toHaveLength(1);
  });

  it('refuse a TypeORM history this release does not know', async () => {
    const odd = newSchema();
    await pool.query(`CREATE SCHEMA "${odd}"`);
    await pool.query(
      `CREATE TABLE "${odd}".migrations (id SERIAL PRIMARY KEY, "timestamp" bigint NOT NULL, name varchar NOT NULL)`,
    );
    await pool.query(`INSERT INTO "${odd}".migrations ("timestamp", name) VALUES (1, 'Something1')`);
    await expect(migrate(pool, odd, logger)).rejects.toThrow(/does not know/);
  });
});
