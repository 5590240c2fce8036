import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@dicomflow/config';
import {
  makeTestCertificates,
  startPostgresCluster,
  type PostgresCluster,
  type TestCertificates,
} from '@dicomflow/test-helpers';
import { createDataSource } from './data-source.js';

describe('the tracker data source over PostgreSQL SSL (DB_SSL, DB_SSL_CA)', () => {
  let certs: TestCertificates;
  let cluster: PostgresCluster;
  let confDir: string;

  beforeAll(async () => {
    certs = await makeTestCertificates();
    cluster = await startPostgresCluster('dicomflow_tracker_ssl', {
      ssl: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
    });
    confDir = await mkdtemp(join(tmpdir(), 'tracker-ssl-conf-'));
  }, 180_000);

  afterAll(async () => {
    await cluster.close();
    await certs.close();
    await rm(confDir, { recursive: true, force: true });
  }, 60_000);

  function configWith(env: Record<string, string>): ReturnType<typeof loadConfig<'flow-tracker'>> {
    return loadConfig('flow-tracker', {
      confDir,
      env: {
        DB_HOST: '127.0.0.1',
        DB_PORT: String(cluster.port),
        DB_NAME: cluster.database,
        DB_USER: 'postgres',
        DB_PASS: '',
        ...env,
      },
    });
  }

  it('connects over SSL, as the server sees it', async () => {
    const dataSource = createDataSource(configWith({ DB_SSL: 'true', DB_SSL_CA: certs.ca.certFile }));
    await dataSource.initialize();
    try {
      const rows: unknown = await dataSource.query(
        'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      expect(rows).toEqual([{ ssl: true }]);
    } finally {
      await dataSource.destroy();
    }
  });

  it('fails with a certificate error when the CA is another one', async () => {
    const dataSource = createDataSource(configWith({ DB_SSL: 'true', DB_SSL_CA: certs.otherCa.certFile }));
    await expect(dataSource.initialize()).rejects.toThrow(/certificate/i);
  });

  it('is refused without DB_SSL by a server that demands SSL', async () => {
    const dataSource = createDataSource(configWith({}));
    await expect(dataSource.initialize()).rejects.toThrow(/no encryption/);
  });
});
