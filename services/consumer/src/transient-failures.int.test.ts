import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobFinishedMessageId, type Job } from '@dicomflow/messages';
import { buildTestModelImage, COPY_MODEL, testStorageConfig, waitFor } from '@dicomflow/test-helpers';
import { jobFixture, receiptInput, storeReceipt, type StoredReceipt } from './testing/fixtures.js';
import { newIsolation, startConsumer, TestBus, type InProcessConsumer } from './testing/consumer-harness.js';

/**
 * A TCP relay to the tests' S3 that can refuse everything for a while (S3 "away"), or cut one connection
 * once it has served a number of bytes (a download broken mid-body).
 */
class S3Relay {
  down = false;
  refused = 0;
  cuts = 0;
  #cutAfter: number | undefined;
  readonly #sockets = new Set<Socket>();
  readonly server: Server;

  private constructor() {
    const target = testStorageConfig();
    this.server = createServer((client) => {
      if (this.down) {
        this.refused++;
        client.destroy();
        return;
      }
      const upstream = connect(target.port, target.endPoint);
      this.#sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      let served = 0;
      upstream.on('data', (chunk: Buffer) => {
        served += chunk.length;
        if (this.#cutAfter !== undefined && served > this.#cutAfter) {
          this.#cutAfter = undefined;
          this.cuts++;
          close();
        }
      });
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
  }

  static async start(): Promise<S3Relay> {
    const relay = new S3Relay();
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  port(): number {
    const address = this.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('relay not listening');
    return address.port;
  }

  /** Cuts every open connection and refuses new ones until `up()`. */
  goDown(): void {
    this.down = true;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  up(): void {
    this.down = false;
  }

  /** Cuts the next connection that serves more than `bytes` to the consumer (once). */
  cutOnceAfter(bytes: number): void {
    this.#cutAfter = bytes;
  }

  async close(): Promise<void> {
    this.goDown();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A copy-model job over every member of `receipt`. */
async function copyJob(bus: TestBus, receipt: StoredReceipt): Promise<Job> {
  return jobFixture({
    image: await buildTestModelImage(COPY_MODEL),
    input: receiptInput(
      receipt,
      receipt.instances.map((i) => i.member),
      [],
    ),
    runsBucket: bus.isolation.buckets.runs,
  });
}

describe('consumer: transient failures', () => {
  let bus: TestBus;
  let consumer: InProcessConsumer;
  let relay: S3Relay;

  beforeAll(async () => {
    relay = await S3Relay.start();
    const isolation = newIsolation();
    bus = await TestBus.open(isolation);
    consumer = await startConsumer(isolation, { S3_ENDPOINT: '127.0.0.1', S3_PORT: String(relay.port()) });
  });

  afterAll(async () => {
    await consumer.close();
    await bus.cleanup();
    await relay.close();
  });

  it('retries a job while S3 is away, then runs it once S3 is back', async () => {
    const job = await copyJob(bus, await storeReceipt(bus.storage, bus.isolation.buckets.incoming, 1, 2));
    relay.goDown();
    await bus.publishJob(job);
    await waitFor(() => relay.refused >= 2, 'the consumer trying S3 twice while it is away', 30_000);
    expect(bus.of(job.runId)).toEqual([]);
    relay.up();
    await waitFor(() => bus.outcome(job) !== undefined, 'the outcome', 60_000);

    expect(bus.outcome(job)).toMatchObject({
      routingKey: 'job.finished',
      messageId: jobFinishedMessageId(job.runId, 0),
    });
    expect(await bus.storage.stat(job.output.bucket, job.output.key)).toBeDefined();
    expect(await bus.containersLeft()).toEqual([]);
  });

  it('fails the job after its last attempt when S3 stays away (the run does not wait forever)', async () => {
    const job = await copyJob(bus, await storeReceipt(bus.storage, bus.isolation.buckets.incoming, 1, 1));
    relay.goDown();
    try {
      await bus.publishJob(job);
      await waitFor(() => bus.outcome(job) !== undefined, 'the outcome', 60_000);
    } finally {
      relay.up();
    }
    const outcome = bus.outcome(job);
    expect(outcome).toMatchObject({ routingKey: 'job.failed', body: { reason: 'error' } });
    expect(outcome?.routingKey === 'job.failed' && outcome.body.message).toMatch(
      /failed 8 times on transient errors/,
    );
  });
});

describe.each([
  ['archive calls', false],
  ['work folder', true],
])('consumer: a download cut mid-body (%s)', (_mode, workFolder) => {
  let bus: TestBus;
  let consumer: InProcessConsumer;
  let relay: S3Relay;
  let work: string | undefined;

  beforeAll(async () => {
    relay = await S3Relay.start();
    const isolation = newIsolation();
    bus = await TestBus.open(isolation);
    work = workFolder ? await mkdtemp(join(tmpdir(), 'consumer-cut-')) : undefined;
    consumer = await startConsumer(isolation, {
      S3_ENDPOINT: '127.0.0.1',
      S3_PORT: String(relay.port()),
      ...(work ? { CONSUMER_WORK_DIR: work } : {}),
    });
  });

  afterAll(async () => {
    await consumer.close();
    await bus.cleanup();
    await relay.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('retries the job (never fails it as a bad input) and then runs it with the whole input', async () => {
    // 2 x 20 instances of ~2.6 KB: a tar of ~130 KB, far larger than the index read before it.
    const receipt = await storeReceipt(bus.storage, bus.isolation.buckets.incoming, 2, 20);
    const job = await copyJob(bus, receipt);
    relay.cutOnceAfter(64 * 1024);
    await bus.publishJob(job);
    await waitFor(() => bus.outcome(job) !== undefined, 'the outcome', 60_000);

    expect(relay.cuts).toBe(1);
    expect(bus.outcome(job)).toMatchObject({ routingKey: 'job.finished' });
    const output = await bus.storage.stat(job.output.bucket, job.output.key);
    // The copy model's output holds every input file: nothing of the cut first attempt is missing.
    expect(output?.size).toBeGreaterThan(receipt.instances.reduce((sum, i) => sum + i.body.length, 0));
    expect(await bus.containersLeft()).toEqual([]);
  });
});
