import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@dicomflow/test-helpers';
import { ExitCode, parseDestination, runCli, trackerTokenOf, trackerUrlOf } from './index.js';
import { captureOutput, tempDir } from './testing/cli-fixtures.js';

describe('dicomflow runs (no tracker needed)', () => {
  let confDir: string;

  beforeAll(async () => {
    confDir = await tempDir();
  });
  afterAll(async () => {
    await rm(confDir, { recursive: true, force: true });
  });

  it('reads --destination host:port:AET, IPv6 hosts included, and says what is wrong with a bad one', () => {
    expect(parseDestination('pacs.example:104:PACS')).toEqual({
      host: 'pacs.example',
      port: 104,
      ae_title: 'PACS',
    });
    expect(parseDestination('[::1]:11112:DEST')).toEqual({ host: '::1', port: 11112, ae_title: 'DEST' });
    expect(parseDestination('https://pacs.example/dicom-web')).toEqual({
      url: 'https://pacs.example/dicom-web',
    });
    expect(() => parseDestination('https://user:pw@pacs.example/dicom-web')).toThrow(
      'expected an http(s) URL without user name or password',
    );
    for (const bad of [
      'pacs',
      'pacs:104',
      'pacs:0:PACS',
      'pacs:x:PACS',
      ':104:PACS',
      'pacs:104:SEVENTEEN_LETTERS',
    ])
      expect(() => parseDestination(bad)).toThrow(`--destination ${bad}: expected host:port:AET`);
  });

  it("sends the flow-tracker's API token, as the tracker reads it", () => {
    expect(trackerTokenOf({ env: { CONF_DIR: confDir, TRACKER_API_TOKEN: 'cli-token' } })).toBe('cli-token');
    expect(trackerTokenOf({ env: { CONF_DIR: confDir } })).toBe('');
  });

  it("finds the tracker through --tracker, else the flow-tracker's HTTP_HOST and HTTP_PORT", () => {
    expect(trackerUrlOf({ env: {}, trackerUrl: 'http://tracker:8080/' })).toBe('http://tracker:8080');
    expect(trackerUrlOf({ env: { CONF_DIR: confDir } })).toBe('http://127.0.0.1:8080');
    expect(trackerUrlOf({ env: { CONF_DIR: confDir, HTTP_PORT: '18080', HTTP_HOST: '10.0.0.5' } })).toBe(
      'http://10.0.0.5:18080',
    );
    expect(trackerUrlOf({ env: { CONF_DIR: confDir, HTTP_HOST: '::1' } })).toBe('http://[::1]:8080');
  });

  it('refuses bad arguments with exit code 2', async () => {
    const cases: [string[], string][] = [
      [['runs'], 'dicomflow: runs needs resend or rerun'],
      [['runs', 'replay'], 'dicomflow: unknown runs command: replay'],
      [['runs', 'resend'], 'dicomflow: runs resend needs one run id'],
      [
        ['runs', 'rerun', randomUUID(), '--destination', 'a:1:B'],
        'dicomflow: runs rerun takes no --destination',
      ],
      [['runs', 'resend', randomUUID(), '--destination', 'a:1'], 'dicomflow: --destination a:1: expected'],
      [
        ['runs', 'resend', 'run-7', '--tracker', 'http://127.0.0.1:1'],
        'dicomflow: run-7 is not a run id (a UUID)',
      ],
    ];
    for (const [args, message] of cases) {
      const output = captureOutput();
      expect(await runCli(args, output), args.join(' ')).toBe(ExitCode.usage);
      expect(output.stderr[0]).toContain(message);
    }
  });

  it('says the tracker cannot be reached, with exit code 2', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    for (const command of ['resend', 'rerun']) {
      const output = captureOutput();
      expect(await runCli(['runs', command, randomUUID(), '--tracker', url], output)).toBe(ExitCode.usage);
      expect(output.stderr).toEqual([
        expect.stringMatching(
          new RegExp(
            `^dicomflow: cannot reach the flow-tracker at ${url}: .*ECONNREFUSED.* \\(set it with --tracker <url>\\)$`,
          ),
        ),
      ]);
    }
  });
});
