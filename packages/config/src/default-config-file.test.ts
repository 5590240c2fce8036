import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig, SERVICE_NAMES } from './index.js';

const confDir = join(dirname(fileURLToPath(import.meta.url)), '../../../conf.d');
const defaultFile = join(confDir, '00_default_config.yaml');

/** Keys whose default differs per service: a shared file must not set them, only mention them. */
const PER_SERVICE_KEYS = describeConfig()
  .filter((d) => typeof d.default === 'object' && d.default !== null && !Array.isArray(d.default))
  .map((d) => d.key);

describe('conf.d/00_default_config.yaml', () => {
  const fileValues = parse(readFileSync(defaultFile, 'utf8')) as Record<string, unknown>;

  it('sets every key except per-service ones, and mentions those in a comment', () => {
    expect(PER_SERVICE_KEYS).toEqual(['HTTP_PORT']);
    const documented = describeConfig().map((d) => d.key);
    expect(Object.keys(fileValues).sort()).toEqual(
      documented.filter((key) => !PER_SERVICE_KEYS.includes(key)).sort(),
    );
    const text = readFileSync(defaultFile, 'utf8');
    for (const key of PER_SERVICE_KEYS) expect(text).toMatch(new RegExp(`^# ${key}:`, 'm'));
  });

  it('gives each key its built-in default and a comment', () => {
    const lines = readFileSync(defaultFile, 'utf8').split('\n');
    for (const { key, default: defaultValue } of describeConfig()) {
      if (PER_SERVICE_KEYS.includes(key)) continue;
      expect({ key, value: fileValues[key] }).toEqual({ key, value: defaultValue });
      const at = lines.findIndex((line) => line.startsWith(`${key}:`));
      expect(lines[at - 1], `comment above ${key}`).toMatch(/^# /);
    }
  });

  it('loads for every service and yields the built-in defaults', () => {
    const empty = mkdtempSync(join(tmpdir(), 'dicomflow-empty-conf-'));
    try {
      for (const service of SERVICE_NAMES) {
        const fromFile = loadConfig(service, { confDir, env: {} });
        const builtIn = loadConfig(service, { confDir: empty, env: {} });
        expect(fromFile).toEqual(builtIn);
      }
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('describeConfig', () => {
  it('lists common keys for all services and service keys for their service only', () => {
    const byKey = new Map(describeConfig().map((d) => [d.key, d]));
    expect(byKey.get('RABBIT_HOSTNAME')?.services).toBe('all');
    expect(byKey.get('AE_TITLE')?.services).toEqual(['storescp']);
    expect(byKey.get('CPUS')?.services).toEqual(['consumer']);
    expect(byKey.get('DB_PASS')?.sensitive).toBe(true);
    expect(byKey.get('DB_HOST')?.sensitive).toBe(false);
    expect(byKey.get('HTTP_PORT')?.default).toMatchObject({ storescp: 9101, 'flow-tracker': 8080 });
    for (const d of byKey.values()) expect(d.doc.length, d.key).toBeGreaterThan(10);
  });
});
