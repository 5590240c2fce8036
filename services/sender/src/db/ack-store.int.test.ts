import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@dicomflow/config';
import { createLogger } from '@dicomflow/runtime';
import { testEnvironment } from '@dicomflow/test-helpers';
import { AckBatcher, AckStore } from './ack-store.js';
import { migrate } from './migrations.js';
import { createPool, type Pool } from './pool.js';

const schema = `send_acks_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const logger = createLogger({ service: 'sender-test', level: 'silent' });
let pool: Pool;
let store: AckStore;

beforeAll(async () => {
  const config = loadConfig('sender', { confDir: '/nonexistent-conf-dir', env: { ...testEnvironment() } });
  pool = createPool(config, logger);
  await migrate(pool, schema, logger);
  // A second migration run (another replica) changes nothing.
  await migrate(pool, schema, logger);
  store = new AckStore(pool, schema);
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe('AckStore', () => {
  it('keeps acknowledgements per run and target; a repeated one is kept once', async () => {
    const runId = randomUUID();
    await store.record(runId, 'a', [
      { member: 'x/1.dcm', sopInstanceUid: '1.1', status: 0 },
      { member: 'x/2.dcm', sopInstanceUid: '1.2', status: 0xb000 },
    ]);
    await store.record(runId, 'a', [{ member: 'x/1.dcm', sopInstanceUid: '1.1', status: 0 }]);
    expect([...(await store.acked(runId, 'a'))].sort()).toEqual(['x/1.dcm', 'x/2.dcm']);
    expect(await store.acked(runId, 'b')).toEqual(new Set());
    expect(await store.acked(randomUUID(), 'a')).toEqual(new Set());
  });

  it('writes batched acknowledgements by flush()', async () => {
    const runId = randomUUID();
    const batcher = new AckBatcher(store, runId, 't');
    for (let i = 0; i < 50; i++) await batcher.add({ member: `m${i}`, sopInstanceUid: `1.${i}`, status: 0 });
    await batcher.flush();
    expect((await store.acked(runId, 't')).size).toBe(50);
  });

  it('holds sending back while too many acknowledgements are not yet written', async () => {
    const runId = randomUUID();
    // The database is slow: each INSERT waits until the test lets it through.
    const gates: (() => void)[] = [];
    const slow = new (class extends AckStore {
      override async record(...args: Parameters<AckStore['record']>): Promise<void> {
        await new Promise<void>((resolve) => gates.push(resolve));
        await super.record(...args);
      }
    })(pool, schema);
    const batcher = new AckBatcher(slow, runId, 't', 4);
    const ack = (i: number) => ({ member: `m${i}`, sopInstanceUid: `1.${i}`, status: 0 });
    for (let i = 0; i < 3; i++) await batcher.add(ack(i));
    expect(batcher.unrecorded).toBe(3);
    const fourthState = { done: false };
    const fourth = batcher.add(ack(3)).then(() => (fourthState.done = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fourthState.done).toBe(false);
    // The first INSERT (ack 0) goes through, then the second (acks 1-3): only then may sending go on.
    while (!fourthState.done) {
      gates.shift()?.();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await fourth;
    expect(batcher.unrecorded).toBe(0);
    expect((await store.acked(runId, 't')).size).toBe(4);
  });
});
