// No patient data on the bus or in the logs: studies whose patient attributes are set go through the whole
// suite, and models print those attributes. Every message published on the suite's exchanges and every
// line every service wrote is captured; none may hold the values. The tracker's database must (the model
// logs land there), which shows the models really printed them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  buildTestModelImage,
  generateCtSeries,
  newUid,
  nodelayShimPath,
  runChecked,
  storescu,
  testBrokerConfig,
} from '@dicomflow/test-helpers';
import { startDestination, type DcmtkDestination } from './support/destination.js';
import { AE_TITLE, isDone, startE2eStack, type E2eStack, E2E_TEST_TIMEOUT_MS } from './support/e2e-stack.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

const PATIENT = {
  name: 'Leakcheck^Zebulon',
  id: 'LEAKID93417',
  birthDate: '19230417',
  otherId: 'LEAKOTHER5521',
};
/** Each searched for on its own, case-insensitively (a name may appear split at its ^). */
const SECRETS = ['Leakcheck', 'Zebulon', PATIENT.id, PATIENT.birthDate, PATIENT.otherId];

// Prints every printable run of each input file (patient attributes included), then copies the input.
const PRINTING_COPY = {
  name: 'print-patient-copy',
  script:
    'set -e\nfind "$DICOMFLOW_INPUT_DIR" -type f -exec strings -n 6 {} \\;\n' +
    'cp -r "$DICOMFLOW_INPUT_DIR/." "$DICOMFLOW_OUTPUT_DIR/"\n',
};
// Prints them, then fails: job.failed is where a log tail used to travel.
const PRINTING_FAILURE = {
  name: 'print-patient-fail',
  script: 'find "$DICOMFLOW_INPUT_DIR" -type f -exec strings -n 6 {} \\;\necho "giving up" >&2\nexit 3\n',
};

let stack: E2eStack;
let work: string;
let shim: string;
let destination: DcmtkDestination;
let connection: amqp.ChannelModel;
const messages: string[] = [];
const lines: string[] = [];
let stopListening: () => void = () => undefined;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-no-patient-data-'));
  shim = await nodelayShimPath(work);
  destination = await startDestination(work, shim);
  stack = await startE2eStack({ cpus: 2 });
  stopListening = stack.onLine((service, line) => lines.push(`[${service}] ${line}`));
  // Every message on the suite's exchange and its dead-letter exchange, body and headers.
  connection = await amqp.connect(testBrokerConfig());
  const channel = await connection.createChannel();
  for (const exchange of [stack.env.RABBIT_EXCHANGE ?? '', `${stack.env.RABBIT_EXCHANGE ?? ''}.dead`]) {
    await channel.assertExchange(exchange, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, exchange, '#');
    await channel.consume(
      queue,
      (msg) => {
        if (msg) messages.push(`${JSON.stringify(msg.properties)} ${msg.content.toString('utf8')}`);
      },
      { noAck: true },
    );
  }
}, 240_000);

afterAll(async () => {
  stopListening();
  await connection.close().catch(() => undefined);
  await stack.close();
  await destination.process.stop();
  await rm(work, { recursive: true, force: true });
});

describe('patient data', () => {
  it('never appears in a message or a log line, while the models print it', async () => {
    const [copyImage, failImage] = await Promise.all([
      buildTestModelImage(PRINTING_COPY),
      buildTestModelImage(PRINTING_FAILURE),
    ]);
    const studyInstanceUid = newUid();
    // Flows select the study by its UID: a trigger on a patient attribute would put it in flow.matched.
    const triggers = [{ StudyInstanceUID: `^${studyInstanceUid.replaceAll('.', '\\.')}$` }];
    await stack.writeFlow('leak-copy.yaml', {
      name: 'leak-copy',
      triggers,
      models: [{ docker_kwargs: { image: copyImage }, timeout: 120 }],
      destinations: [{ host: '127.0.0.1', port: destination.port, ae_title: 'DEST' }],
    });
    await stack.writeFlow('leak-fail.yaml', {
      name: 'leak-fail',
      triggers,
      models: [{ docker_kwargs: { image: failImage }, timeout: 120 }],
    });
    const files = await generateCtSeries(join(work, 'study'), 3, {
      studyInstanceUid,
      patientName: PATIENT.name,
      patientId: PATIENT.id,
      rows: 32,
      columns: 32,
    });
    await runChecked('dcmodify', [
      '-nb',
      '-m',
      `(0010,0030)=${PATIENT.birthDate}`,
      '-i',
      `(0010,1000)=${PATIENT.otherId}`,
      ...files,
    ]);
    const sent = await storescu({
      port: stack.aePort,
      calledAe: AE_TITLE,
      callingAe: 'E2E-SCU',
      files,
      env: { ...process.env, LD_PRELOAD: shim },
    });
    expect(sent.code, sent.stderr).toBe(0);

    const [copied] = await stack.waitForRuns('leak-copy', 1, isDone);
    const [failed] = await stack.waitForRuns('leak-fail', 1, isDone);
    expect(copied?.statusName, JSON.stringify(copied?.failure)).toBe('sent');
    expect(failed?.statusName).toBe('failed');
    expect(failed?.failure?.reason).toBe('exit-code');

    // The models did print the patient's data: their logs, kept by the tracker, hold it.
    for (const run of [copied, failed]) {
      const detail = await stack.run(run?.id ?? '');
      const log = detail.steps.map((step) => step.log ?? '').join('\n');
      for (const secret of [PATIENT.id, PATIENT.otherId, 'Zebulon']) expect(log).toContain(secret);
    }

    expect(messages.length).toBeGreaterThan(5);
    const everyLine = [...lines, ...stack.logs().split('\n')];
    expect(everyLine.length).toBeGreaterThan(20);
    for (const secret of SECRETS) {
      const pattern = new RegExp(secret, 'i');
      expect(
        messages.filter((message) => pattern.test(message)),
        `messages holding ${secret}`,
      ).toEqual([]);
      expect(
        everyLine.filter((line) => pattern.test(line)),
        `log lines holding ${secret}`,
      ).toEqual([]);
    }
  });
});
