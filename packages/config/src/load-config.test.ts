import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { brokerConfigFrom, ConfigError, loadConfig, storageConfigFrom } from './index.js';
import type { CommonConfig, ConfigOf, StorescpConfig } from './index.js';

let confDir: string;

beforeEach(() => {
  confDir = mkdtempSync(join(tmpdir(), 'dicomflow-config-'));
});

afterEach(() => {
  rmSync(confDir, { recursive: true, force: true });
});

function writeConf(name: string, content: string): string {
  const path = join(confDir, name);
  writeFileSync(path, content);
  return path;
}

function loadError(load: () => unknown): ConfigError {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('uses built-in defaults when there is no conf.d folder and no environment', () => {
    const config = loadConfig('storescp', { confDir: join(confDir, 'missing'), env: {} });
    expect(config.RABBIT_PORT).toBe(5672);
    expect(config.AE_TITLE).toBe('STORESCP');
    expect(config.HTTP_PORT).toBe(9101);
    expect(config.TAR_SUBDIR).toEqual([]);
    expect(loadConfig('flow-tracker', { confDir, env: {} }).HTTP_PORT).toBe(8080);
  });

  it('applies defaults < conf.d files in alphabetical order < environment', () => {
    writeConf('20_later.yaml', 'RABBIT_HOSTNAME: from-20\nDB_HOST: from-20\n');
    writeConf('10_earlier.yaml', 'RABBIT_HOSTNAME: from-10\nDB_HOST: from-10\nDB_NAME: from-10\n');
    writeConf('notes.txt', 'NOT_A_KEY: ignored because not yaml\n');
    const config = loadConfig('scheduler', { confDir, env: { DB_HOST: 'from-env' } });
    expect(config.RABBIT_HOSTNAME).toBe('from-20');
    expect(config.DB_NAME).toBe('from-10');
    expect(config.DB_HOST).toBe('from-env');
    expect(config.DB_USER).toBe('dicomflow');
  });

  it('takes the folder from CONF_DIR in the environment', () => {
    writeConf('a.yaml', 'AE_PORT: 11112\n');
    expect(loadConfig('storescp', { env: { CONF_DIR: confDir } }).AE_PORT).toBe(11112);
  });

  it('rejects a key that no service knows, naming the key, file and line', () => {
    const path = writeConf('10_site.yaml', 'RABBIT_PORT: 5672\nRABIT_HOSTNAME: typo\n');
    const err = loadError(() => loadConfig('scheduler', { confDir, env: {} }));
    expect(err.key).toBe('RABIT_HOSTNAME');
    expect(err.source).toBe(path);
    expect(err.line).toBe(2);
    expect(err.message).toContain('RABIT_HOSTNAME');
    expect(err.message).toContain(`${path}:2`);
  });

  it('treats keys named like Object.prototype members as unknown', () => {
    writeConf('10_site.yaml', 'constructor: 1\n');
    expect(loadError(() => loadConfig('sender', { confDir, env: {} })).key).toBe('constructor');
  });

  it('ignores keys that only other services read', () => {
    writeConf('10_site.yaml', 'AE_TITLE: OTHER\nCPUS: 4\nPATIENT_COLUMN: initials\nDB_NAME: shared\n');
    const config = loadConfig('scheduler', { confDir, env: {} });
    expect(config.DB_NAME).toBe('shared');
    expect(config).not.toHaveProperty('AE_TITLE');
    expect(config).not.toHaveProperty('CPUS');
  });

  it('rejects a value of the wrong type in a file, naming key and file', () => {
    const path = writeConf('10_site.yaml', 'AE_PORT: lots\n');
    const err = loadError(() => loadConfig('storescp', { confDir, env: {} }));
    expect(err.key).toBe('AE_PORT');
    expect(err.source).toBe(path);
    expect(err.message).toMatch(/AE_PORT.*10_site\.yaml:1.*integer between 0 and 65535.*"lots"/);
  });

  it('checks a key in a shared file only in the services that read it', () => {
    writeConf('10_site.yaml', 'CPUS: many\n');
    expect(loadConfig('sender', { confDir, env: {} }).HTTP_PORT).toBe(9105);
    expect(loadError(() => loadConfig('consumer', { confDir, env: {} })).key).toBe('CPUS');
  });

  it('rejects a value of the wrong type from the environment, naming "environment"', () => {
    const err = loadError(() => loadConfig('consumer', { confDir, env: { CPUS: '2.5' } }));
    expect(err.key).toBe('CPUS');
    expect(err.source).toBe('environment');
    expect(err.message).toContain('CPUS in environment');
  });

  it('never shows the value of a sensitive key in an error', () => {
    writeConf('10_site.yaml', 'DB_PASS: 12345678\n');
    const err = loadError(() => loadConfig('scheduler', { confDir, env: {} }));
    expect(err.key).toBe('DB_PASS');
    expect(err.message).not.toContain('12345678');
  });

  it('reads <KEY>_FILE secrets without their trailing newline', () => {
    const secret = join(confDir, 'secrets', 'rabbit');
    mkdirSync(join(confDir, 'secrets'));
    writeFileSync(secret, 's3cr3t pass\n');
    const config = loadConfig('sender', { confDir, env: { RABBIT_PASSWORD_FILE: secret } });
    expect(config.RABBIT_PASSWORD).toBe('s3cr3t pass');
  });

  it('checks values read through _FILE and names the file', () => {
    const portFile = join(confDir, 'port.txt');
    writeFileSync(portFile, 'not-a-port\n');
    const err = loadError(() => loadConfig('sender', { confDir, env: { DB_PORT_FILE: portFile } }));
    expect(err.key).toBe('DB_PORT');
    expect(err.source).toContain(portFile);
  });

  it('rejects an unreadable _FILE and a key set both directly and via _FILE', () => {
    const missing = loadError(() =>
      loadConfig('sender', { confDir, env: { DB_PASS_FILE: join(confDir, 'nope') } }),
    );
    expect(missing.key).toBe('DB_PASS_FILE');
    expect(missing.source).toBe('environment');
    const both = loadError(() =>
      loadConfig('sender', { confDir, env: { DB_PASS: 'a', DB_PASS_FILE: join(confDir, 'nope') } }),
    );
    expect(both.key).toBe('DB_PASS');
  });

  it('parses lists from an environment string and from a YAML list', () => {
    writeConf('10_site.yaml', 'TAR_SUBDIR:\n  - StudyInstanceUID\n  - SeriesInstanceUID\nGPUS: [0, 1]\n');
    const fromYaml = loadConfig('storescp', { confDir, env: {} });
    expect(fromYaml.TAR_SUBDIR).toEqual(['StudyInstanceUID', 'SeriesInstanceUID']);
    expect(loadConfig('consumer', { confDir, env: {} }).GPUS).toEqual(['0', '1']);

    const fromEnv = loadConfig('storescp', {
      confDir,
      env: { ALLOWED_HOSTS: '10.0.0.0/8, 192.168.1.20 ::1', DENIED_CALLING_AE_TITLES: 'BAD1,BAD2' },
    });
    expect(fromEnv.ALLOWED_HOSTS).toEqual(['10.0.0.0/8', '192.168.1.20', '::1']);
    expect(fromEnv.DENIED_CALLING_AE_TITLES).toEqual(['BAD1', 'BAD2']);
    expect(loadConfig('consumer', { confDir, env: { GPUS: '' } }).GPUS).toEqual([]);
  });

  it('rejects list items of the wrong shape', () => {
    const err = loadError(() => loadConfig('storescp', { confDir, env: { ALLOWED_HOSTS: '10.0.0.0/33' } }));
    expect(err.key).toBe('ALLOWED_HOSTS');
  });

  it('reads booleans from the environment as true/false/1/0 only', () => {
    expect(loadConfig('sender', { confDir, env: { S3_USE_SSL: '1' } }).S3_USE_SSL).toBe(true);
    expect(loadConfig('sender', { confDir, env: { S3_USE_SSL: 'TRUE' } }).S3_USE_SSL).toBe(true);
    expect(loadConfig('storescp', { confDir, env: { SPOOL_FSYNC: '0' } }).SPOOL_FSYNC).toBe(false);
    expect(loadError(() => loadConfig('sender', { confDir, env: { S3_USE_SSL: 'yes' } })).key).toBe(
      'S3_USE_SSL',
    );
  });

  it('reads numbers strictly and enforces ranges and enums', () => {
    expect(loadConfig('storescp', { confDir, env: { GROUP_TIMEOUT: '0.5' } }).GROUP_TIMEOUT).toBe(0.5);
    expect(loadConfig('storescp', { confDir, env: { LOG_LEVEL: 'DEBUG' } }).LOG_LEVEL).toBe('debug');
    expect(loadError(() => loadConfig('sender', { confDir, env: { RABBIT_PORT: '12abc' } })).key).toBe(
      'RABBIT_PORT',
    );
    expect(loadError(() => loadConfig('sender', { confDir, env: { S3_PART_SIZE: '1024' } })).key).toBe(
      'S3_PART_SIZE',
    );
    expect(loadError(() => loadConfig('storescp', { confDir, env: { GROUP_TIMEOUT: '0' } })).key).toBe(
      'GROUP_TIMEOUT',
    );
    expect(loadError(() => loadConfig('storescp', { confDir, env: { GROUPING: 'patient' } })).key).toBe(
      'GROUPING',
    );
  });

  it('names the file and line of a YAML syntax error', () => {
    const path = writeConf('10_broken.yaml', 'RABBIT_PORT: 5672\nDB_HOST: [unclosed\nDB_NAME: x\n');
    const err = loadError(() => loadConfig('sender', { confDir, env: {} }));
    expect(err.source).toBe(path);
    expect(err.line).toBeGreaterThanOrEqual(2);
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/line \d+/);
  });

  it('rejects a duplicate key and a file whose top level is not a mapping', () => {
    writeConf('10_dup.yaml', 'DB_HOST: a\nDB_HOST: b\n');
    expect(loadError(() => loadConfig('sender', { confDir, env: {} })).message).toContain('10_dup.yaml');
    rmSync(join(confDir, '10_dup.yaml'));
    writeConf('10_list.yaml', '- DB_HOST\n');
    expect(loadError(() => loadConfig('sender', { confDir, env: {} })).message).toContain('mapping');
  });

  it('accepts an empty or comment-only file', () => {
    writeConf('10_empty.yaml', '');
    writeConf('20_comments.yaml', '# nothing set here\n');
    expect(loadConfig('sender', { confDir, env: {} }).DB_PORT).toBe(5432);
  });

  it('types each service config from its schema', () => {
    const config = loadConfig('storescp', { confDir, env: {} });
    expectTypeOf(config).toEqualTypeOf<StorescpConfig>();
    expectTypeOf(config.GROUPING).toEqualTypeOf<'association' | 'study' | 'series'>();
    expectTypeOf(config.TAR_SUBDIR).toEqualTypeOf<readonly string[]>();
    expectTypeOf(config.SPOOL_FSYNC).toEqualTypeOf<boolean>();
    expectTypeOf<ConfigOf<'consumer'>>().toExtend<CommonConfig>();
    expectTypeOf<ConfigOf<'scheduler'>>().not.toHaveProperty('AE_TITLE');
    expect(config.GROUPING).toBe('association');
  });

  it('returns a deeply frozen object', () => {
    const config = loadConfig('storescp', { confDir, env: { TAR_SUBDIR: 'StudyInstanceUID' } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.TAR_SUBDIR)).toBe(true);
  });
});

describe('connection options', () => {
  it('maps the common keys to broker and storage client options', () => {
    const config = loadConfig('sender', {
      confDir,
      env: { RABBIT_HOSTNAME: 'mq', RABBIT_PASSWORD: 'pw', S3_USE_SSL: 'true', S3_PART_SIZE: '5368709120' },
    });
    expect(brokerConfigFrom(config)).toEqual({
      hostname: 'mq',
      port: 5672,
      username: 'guest',
      password: 'pw',
    });
    expect(storageConfigFrom(config)).toEqual({
      endPoint: 'localhost',
      port: 9000,
      useSSL: true,
      accessKey: 'minioadmin',
      secretKey: 'minioadmin',
      partSize: 5368709120,
    });
  });
});
