import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, PermanentError } from '@dicomflow/runtime';
import {
  makeTestCertificates,
  startPostgresCluster,
  type PostgresCluster,
  type TestCertificates,
} from '@dicomflow/test-helpers';
import { createPool, type PoolConnection } from './index.js';

const logger = createLogger({ service: 'database-ssl-test', level: 'silent' });

describe('PostgreSQL over SSL (verify-full)', () => {
  let certs: TestCertificates;
  let cluster: PostgresCluster;
  let base: PoolConnection;

  beforeAll(async () => {
    certs = await makeTestCertificates();
    cluster = await startPostgresCluster('dicomflow_ssl', {
      ssl: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
    });
    base = {
      host: '127.0.0.1',
      port: cluster.port,
      database: cluster.database,
      user: 'postgres',
      password: '',
    };
  }, 180_000);

  afterAll(async () => {
    await cluster.close();
    await certs.close();
  }, 60_000);

  /** Runs one query on a fresh pool for `connection`, closing the pool either way. */
  async function sslOfSession(connection: PoolConnection): Promise<boolean | undefined> {
    const pool = createPool(connection, { applicationName: 'ssl-test', max: 1 }, logger);
    try {
      const { rows } = await pool.query<{ ssl: boolean }>(
        'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      return rows[0]?.ssl;
    } finally {
      await pool.end();
    }
  }

  it('queries over SSL with the CA file, and the server sees the session as SSL', async () => {
    expect(await sslOfSession({ ...base, ssl: { ca: certs.ca.certFile } })).toBe(true);
  });

  it('checks the host name: "localhost" is in the certificate too', async () => {
    expect(await sslOfSession({ ...base, host: 'localhost', ssl: { ca: certs.ca.certFile } })).toBe(true);
  });

  it('refuses a server whose certificate does not chain to the configured CA', async () => {
    await expect(sslOfSession({ ...base, ssl: { ca: certs.otherCa.certFile } })).rejects.toThrow(
      /certificate/i,
    );
  });

  it('refuses a server whose certificate is not for the host name', async () => {
    const other = await certs.issue('db.example.org', { dnsNames: ['db.example.org'], ips: [] });
    const wrongName = await startPostgresCluster('dicomflow_ssl_name', {
      ssl: { certFile: other.certFile, keyFile: other.keyFile },
    });
    try {
      await expect(
        sslOfSession({
          ...base,
          port: wrongName.port,
          database: wrongName.database,
          ssl: { ca: certs.ca.certFile },
        }),
      ).rejects.toThrow(/127\.0\.0\.1|altnames|host/i);
    } finally {
      await wrongName.close();
    }
  }, 120_000);

  it('is refused by the server without SSL (hostnossl ... reject), so DB_SSL off cannot slip through', async () => {
    await expect(sslOfSession(base)).rejects.toThrow(/no encryption/);
  });

  it('stops at once, naming the file, when the CA file is missing', () => {
    expect(() =>
      createPool({ ...base, ssl: { ca: '/nonexistent/ca.pem' } }, { applicationName: 'x', max: 1 }, logger),
    ).toThrow(PermanentError);
    expect(() =>
      createPool({ ...base, ssl: { ca: '/nonexistent/ca.pem' } }, { applicationName: 'x', max: 1 }, logger),
    ).toThrow(/PostgreSQL TLS: cannot read the CA certificate file \/nonexistent\/ca\.pem/);
  });
});

describe('PostgreSQL over SSL with client certificates required', () => {
  let certs: TestCertificates;
  let cluster: PostgresCluster;
  let base: PoolConnection;

  beforeAll(async () => {
    certs = await makeTestCertificates();
    cluster = await startPostgresCluster('dicomflow_mtls', {
      ssl: {
        certFile: certs.server.certFile,
        keyFile: certs.server.keyFile,
        caFile: certs.ca.certFile,
        requireClientCert: true,
      },
    });
    base = {
      host: '127.0.0.1',
      port: cluster.port,
      database: cluster.database,
      user: 'postgres',
      password: '',
    };
  }, 180_000);

  afterAll(async () => {
    await cluster.close();
    await certs.close();
  }, 60_000);

  async function query(connection: PoolConnection): Promise<number | undefined> {
    const pool = createPool(connection, { applicationName: 'mtls-test', max: 1 }, logger);
    try {
      const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one');
      return rows[0]?.one;
    } finally {
      await pool.end();
    }
  }

  it('works with a client certificate of the CA (DB_SSL_CERT / DB_SSL_KEY)', async () => {
    expect(
      await query({
        ...base,
        ssl: { ca: certs.ca.certFile, cert: certs.client.certFile, key: certs.client.keyFile },
      }),
    ).toBe(1);
  });

  it('is refused without a client certificate', async () => {
    await expect(query({ ...base, ssl: { ca: certs.ca.certFile } })).rejects.toThrow(/certificate/i);
  });
});
