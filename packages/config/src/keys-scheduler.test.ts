import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index.js';

const confDir = mkdtempSync(join(tmpdir(), 'dicomflow-config-scheduler-'));
afterAll(() => {
  rmSync(confDir, { recursive: true, force: true });
});

describe('scheduler keys', () => {
  it('defaults to the scheduler schema, the dicomflow exchange and unprefixed queues', () => {
    const config = loadConfig('scheduler', { confDir, env: {} });
    expect(config.SCHEDULER_DB_SCHEMA).toBe('scheduler');
    expect(config.RABBIT_EXCHANGE).toBe('dicomflow');
    expect(config.RABBIT_QUEUE_PREFIX).toBe('');
    expect(config.HTTP_PORT).toBe(9103);
  });

  it.each([
    ['SCHEDULER_DB_SCHEMA', 'Runs'],
    ['SCHEDULER_DB_SCHEMA', 'a"; drop table x; --'],
    ['SCHEDULER_DB_SCHEMA', ''],
    ['RABBIT_EXCHANGE', ''],
    ['RABBIT_EXCHANGE', 'with space'],
    ['RABBIT_QUEUE_PREFIX', 'a/b'],
  ])('refuses %s=%j', (key, value) => {
    expect(() => loadConfig('scheduler', { confDir, env: { [key]: value } })).toThrow(ConfigError);
  });

  it('is ignored by the other services', () => {
    const config = loadConfig('storescp', {
      confDir,
      env: { SCHEDULER_DB_SCHEMA: 'x', RABBIT_EXCHANGE: 'y' },
    });
    expect(config).not.toHaveProperty('SCHEDULER_DB_SCHEMA');
  });
});
