import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import amqp from 'amqplib';
import tar from 'tar-stream';
import { deleteSuiteQueues } from '@dicomflow/broker';
import { loadConfig } from '@dicomflow/config';
import { readReceiptIndex, type ReceiptIndex, type StudyReceived } from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { createStorage, type Storage } from '@dicomflow/storage';
import { testBrokerConfig, testEnvironment } from '@dicomflow/test-helpers';
import { createService, type StorescpConfig, type StorescpService } from '../service.js';

/** Collects `study.received` messages for one bucket from a private queue bound to the real exchange. */
export class ReceiptCollector {
  readonly messages: StudyReceived[] = [];
  private constructor(
    private readonly connection: amqp.ChannelModel,
    private readonly bucket: string,
  ) {}

  static async open(bucket: string): Promise<ReceiptCollector> {
    const connection = await amqp.connect(testBrokerConfig());
    const collector = new ReceiptCollector(connection, bucket);
    const channel = await connection.createChannel();
    await channel.assertExchange('dicomflow', 'topic', { durable: true });
    const { queue } = await channel.assertQueue(`test.receipts.${randomUUID()}`, {
      exclusive: true,
      autoDelete: true,
    });
    await channel.bindQueue(queue, 'dicomflow', 'study.received');
    await channel.consume(
      queue,
      (msg) => {
        if (!msg) return;
        const body = JSON.parse(msg.content.toString()) as StudyReceived;
        if (body.bucket === collector.bucket) collector.messages.push(body);
      },
      { noAck: true },
    );
    return collector;
  }

  /** Waits until at least `count` messages arrived (polling; bounded by `timeoutMs`). */
  async waitFor(count: number, timeoutMs = 30_000): Promise<StudyReceived[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      if (Date.now() > deadline)
        throw new Error(`expected ${count} study.received, got ${this.messages.length}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.messages;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

/** A receipt read back from S3: its index and every tar member's bytes. */
export interface StoredReceipt {
  readonly index: ReceiptIndex;
  readonly members: Map<string, Buffer>;
}

export async function readReceipt(storage: Storage, message: StudyReceived): Promise<StoredReceipt> {
  const index = await readReceiptIndex(await storage.getStream(message.bucket, message.indexKey));
  const members = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    void buffer(stream).then((bytes) => {
      members.set(header.name, bytes);
      next();
    });
  });
  const body = await buffer(await storage.getStream(message.bucket, message.tarKey));
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    Readable.from([body]).pipe(extract);
  });
  return { index, members };
}

/** A receiver started in this process against the real broker and S3, with its own spool and bucket. */
export interface Receiver {
  readonly service: StorescpService;
  readonly config: StorescpConfig;
  readonly port: number;
  /** The STOW-RS port (0 unless STOW_TOKEN is set). */
  readonly stowPort: number;
  readonly bucket: string;
  readonly spoolDir: string;
  readonly storage: Storage;
  readonly receipts: ReceiptCollector;
  close(): Promise<void>;
}

/** Deletes the suite queues a receiver declared under its test prefix. */
export async function deleteQueuesWithPrefix(prefix: string): Promise<void> {
  const connection = await amqp.connect(testBrokerConfig());
  try {
    await deleteSuiteQueues(await connection.createChannel(), prefix);
  } finally {
    await connection.close();
  }
}

export async function startReceiver(overrides: Record<string, string> = {}): Promise<Receiver> {
  const spoolDir = overrides.SPOOL_DIR ?? (await mkdtemp(join(tmpdir(), 'storescp-spool-')));
  const confDir = await mkdtemp(join(tmpdir(), 'storescp-conf-'));
  const bucket = overrides.S3_BUCKET_INCOMING ?? `incoming-${randomUUID().slice(0, 8)}`;
  const env = {
    ...testEnvironment(),
    AE_PORT: '0',
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    AE_HOSTNAME: '127.0.0.1',
    // Listens only with a STOW_TOKEN, then on a free port.
    STOW_PORT: '0',
    STOW_HOST: '127.0.0.1',
    SPOOL_DIR: spoolDir,
    S3_BUCKET_INCOMING: bucket,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Suite queues of the test's own, deleted by close().
    RABBIT_QUEUE_PREFIX: `test.storescp-${randomUUID().slice(0, 8)}.`,
    ...overrides,
  };
  const config = loadConfig('storescp', { confDir, env });
  const service = createService(config, createLogger({ service: 'storescp-test', level: config.LOG_LEVEL }));
  const receipts = await ReceiptCollector.open(bucket);
  await service.start();
  const storage = createStorage({
    endPoint: config.S3_ENDPOINT,
    port: config.S3_PORT,
    useSSL: config.S3_USE_SSL,
    accessKey: config.S3_ACCESS_KEY,
    secretKey: config.S3_SECRET_KEY,
    partSize: config.S3_PART_SIZE,
  });
  return {
    service,
    config,
    port: service.ports().dicom,
    stowPort: service.ports().stow,
    bucket,
    spoolDir,
    storage,
    receipts,
    async close() {
      await service.close();
      await receipts.close();
      await deleteQueuesWithPrefix(config.RABBIT_QUEUE_PREFIX);
      await rm(confDir, { recursive: true, force: true });
      if (!overrides.SPOOL_DIR) await rm(spoolDir, { recursive: true, force: true });
    },
  };
}
