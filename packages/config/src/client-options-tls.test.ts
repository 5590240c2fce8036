import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  brokerConfigFrom,
  loadConfig,
  postgresConfigFrom,
  storageConfigFrom,
  type ConfigOf,
} from './index.js';

const emptyConfDir = mkdtempSync(join(tmpdir(), 'dicomflow-config-tls-'));
afterAll(() => {
  rmSync(emptyConfDir, { recursive: true, force: true });
});

function configWith(env: Record<string, string>): ConfigOf<'scheduler'> {
  return loadConfig('scheduler', { confDir: emptyConfDir, env });
}

describe('TLS options of the links (off by default)', () => {
  it('adds no TLS option at all by default', () => {
    const config = configWith({});
    expect(brokerConfigFrom(config)).not.toHaveProperty('tls');
    expect(postgresConfigFrom(config)).not.toHaveProperty('ssl');
    expect(storageConfigFrom(config)).not.toHaveProperty('ca');
  });

  it('ignores the file keys while the flag is off', () => {
    const config = configWith({
      RABBIT_TLS_CA: '/ca.pem',
      DB_SSL_CA: '/ca.pem',
      S3_CA: '/ca.pem',
    });
    expect(brokerConfigFrom(config)).not.toHaveProperty('tls');
    expect(postgresConfigFrom(config)).not.toHaveProperty('ssl');
    expect(storageConfigFrom(config)).not.toHaveProperty('ca');
  });

  it('maps RABBIT_TLS_* to tls, leaving out empty paths', () => {
    expect(brokerConfigFrom(configWith({ RABBIT_TLS: 'true' })).tls).toEqual({});
    expect(
      brokerConfigFrom(
        configWith({
          RABBIT_TLS: '1',
          RABBIT_PORT: '5671',
          RABBIT_TLS_CA: '/etc/ssl/ca.pem',
          RABBIT_TLS_CERT: '/etc/ssl/client.pem',
          RABBIT_TLS_KEY: '/etc/ssl/client.key',
          RABBIT_TLS_SERVERNAME: 'rabbit.example.org',
        }),
      ),
    ).toEqual({
      hostname: 'localhost',
      port: 5671,
      username: 'guest',
      password: 'guest',
      tls: {
        ca: '/etc/ssl/ca.pem',
        cert: '/etc/ssl/client.pem',
        key: '/etc/ssl/client.key',
        servername: 'rabbit.example.org',
      },
    });
  });

  it('maps DB_SSL_* to ssl', () => {
    expect(postgresConfigFrom(configWith({ DB_SSL: 'true' })).ssl).toEqual({});
    expect(
      postgresConfigFrom(
        configWith({ DB_SSL: 'true', DB_SSL_CA: '/ca.pem', DB_SSL_CERT: '/c.pem', DB_SSL_KEY: '/c.key' }),
      ).ssl,
    ).toEqual({ ca: '/ca.pem', cert: '/c.pem', key: '/c.key' });
  });

  it('maps S3_CA to ca when S3_USE_SSL is on', () => {
    expect(storageConfigFrom(configWith({ S3_USE_SSL: 'true' }))).not.toHaveProperty('ca');
    expect(storageConfigFrom(configWith({ S3_USE_SSL: 'true', S3_CA: '/ca.pem' })).ca).toBe('/ca.pem');
  });
});
