import { describe, expect, it } from 'vitest';
import { describeConfig } from './describe-config.js';
import { loadConfig } from './load-config.js';

describe('retention keys', () => {
  const byKey = new Map(describeConfig().map((d) => [d.key, d]));

  it('are read by the services whose janitor uses them', () => {
    expect(byKey.get('RETENTION_SPOOL')?.services).toEqual(['storescp']);
    expect(byKey.get('RETENTION_RECEIPTS')?.services).toEqual(['scheduler']);
    expect(byKey.get('RETENTION_RUN_OUTPUTS')?.services).toEqual(['scheduler', 'sender']);
    expect(byKey.get('RETENTION_ROWS')?.services).toEqual(['scheduler', 'sender']);
    expect(byKey.get('RETENTION_UPLOADS')?.services).toEqual(['scheduler', 'static-storage']);
    expect(byKey.get('RETENTION_EVENTS')?.services).toEqual(['flow-tracker']);
    expect(byKey.get('RETENTION_RUNS')?.services).toEqual(['flow-tracker']);
    expect(byKey.get('JANITOR_INTERVAL')?.services).toEqual([
      'storescp',
      'scheduler',
      'sender',
      'static-storage',
      'flow-tracker',
    ]);
  });

  it('default to days, keep tracker runs longest, and take 0 for "forever"', () => {
    const config = loadConfig('flow-tracker', {
      confDir: '/nonexistent-conf-dir',
      env: { RETENTION_EVENTS: '0' },
    });
    expect(config.RETENTION_EVENTS).toBe(0);
    expect(config.RETENTION_RUNS).toBe(365 * 86400);
    expect(loadConfig('scheduler', { confDir: '/nonexistent-conf-dir', env: {} })).toMatchObject({
      RETENTION_RECEIPTS: 30 * 86400,
      RETENTION_UPLOADS: 86400,
      JANITOR_INTERVAL: 3600,
    });
    expect(() =>
      loadConfig('sender', { confDir: '/nonexistent-conf-dir', env: { RETENTION_ROWS: '-1' } }),
    ).toThrow(/RETENTION_ROWS/);
  });
});
