import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectPart10Buffer } from '@dicomflow/dicom';
import {
  freePort,
  generateCtSeries,
  newUid,
  testEnvironment,
  testStorageConfig,
  waitForPort,
} from '@dicomflow/test-helpers';
import { deleteQueuesWithPrefix, readReceipt, ReceiptCollector } from './testing/receiver-harness.js';
import { createStorage } from '@dicomflow/storage';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-crash-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function startProcess(env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

describe('storescp killed mid-association', () => {
  it('publishes, after a restart, every instance that was answered with success', async () => {
    const bucket = `incoming-${randomUUID().slice(0, 8)}`;
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...testEnvironment(),
      CONF_DIR: work,
      AE_PORT: String(port),
      AE_HOSTNAME: '127.0.0.1',
      HTTP_PORT: String(await freePort()),
      SPOOL_DIR: join(work, 'spool'),
      S3_BUCKET_INCOMING: bucket,
      LOG_LEVEL: 'warn',
      RABBIT_QUEUE_PREFIX: `test.storescp-crash-${randomUUID().slice(0, 8)}.`,
    };
    const files = await generateCtSeries(join(work, 'series'), 120, { studyInstanceUid: newUid() });
    const receipts = await ReceiptCollector.open(bucket);
    let receiver = startProcess(env);
    try {
      await waitForPort(port, '127.0.0.1', 20_000);
      // Sent one by one in this order; storescu -v reports each response, so we know what was acknowledged.
      const scu = spawn('storescu', ['-v', '-aec', 'STORESCP', '127.0.0.1', String(port), ...files]);
      const acknowledged: string[] = [];
      let sending = '';
      let output = '';
      const killedAfter = 40;
      const onOutput = (chunk: Buffer): void => {
        output += chunk.toString();
        let newline: number;
        while ((newline = output.indexOf('\n')) !== -1) {
          const line = output.slice(0, newline);
          output = output.slice(newline + 1);
          const file = /Sending file: (.*)$/.exec(line)?.[1];
          if (file) sending = file.trim();
          if (line.includes('Received Store Response (Success)')) {
            acknowledged.push(sending);
            if (acknowledged.length === killedAfter) receiver.kill('SIGKILL');
          }
        }
      };
      scu.stdout.on('data', onOutput);
      scu.stderr.on('data', onOutput);
      await new Promise((resolve) => scu.on('close', resolve));
      expect(acknowledged.length).toBeGreaterThanOrEqual(killedAfter);
      expect(acknowledged.length).toBeLessThan(files.length);
      await new Promise((resolve) =>
        receiver.exitCode !== null || receiver.signalCode !== null
          ? resolve(null)
          : receiver.once('exit', resolve),
      );
      expect(receipts.messages).toHaveLength(0);

      receiver = startProcess(env);
      const [message] = await receipts.waitFor(1, 30_000);
      if (!message) throw new Error('no receipt after restart');
      const storage = createStorage(testStorageConfig());
      const { index } = await readReceipt(storage, message);
      const published = new Set(index.instances.map((i) => i.sopInstanceUid));
      for (const path of acknowledged) {
        const uid = inspectPart10Buffer(await readFile(path), { validate: true }).sopInstanceUid;
        expect(published.has(uid), `acknowledged ${path} was lost`).toBe(true);
      }
      expect(message.instanceCount).toBe(index.instances.length);
    } finally {
      receiver.kill('SIGTERM');
      await receipts.close();
      await deleteQueuesWithPrefix(env.RABBIT_QUEUE_PREFIX ?? '');
    }
  });
});
