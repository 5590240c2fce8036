import { randomUUID } from 'node:crypto';
import { checkFlowDefinition, type FlowMatched } from '@dicomflow/messages';

/** What a test flow looks like. */
export interface FlowFixtureOptions {
  /** How many models (default 1). */
  models?: number;
  /** Indexes of the models that ask for a GPU. */
  gpu?: readonly number[];
  /** The flow's priority (default 0). */
  priority?: number;
  name?: string;
}

/** A valid `flow.matched` with a new run id, its flow checked (every default filled in). */
export function flowMatched(opts: FlowFixtureOptions = {}): FlowMatched {
  const count = opts.models ?? 1;
  const priority = opts.priority ?? 0;
  const checked = checkFlowDefinition({
    name: opts.name ?? 'test-flow',
    version: '1',
    priority,
    triggers: [{ Modality: 'CT' }],
    models: Array.from({ length: count }, (_, step) => ({
      docker_kwargs: { image: `model-${step}:1`, command: ['run', String(step)] },
      gpu: opts.gpu?.includes(step) ?? false,
      timeout: 60,
    })),
    destinations: [{ host: 'pacs.example', port: 104, ae_title: 'PACS' }],
    return_to_sender_on_ports: [11112],
  });
  if (!checked.ok) throw new Error(`fixture flow is invalid: ${JSON.stringify(checked.issues)}`);
  const runId = randomUUID();
  const receiptId = randomUUID();
  return {
    runId,
    receiptId,
    matchedAt: new Date().toISOString(),
    flowFile: 'test-flow.yaml',
    flow: checked.flow,
    flowHash: 'ab'.repeat(32),
    bucket: 'incoming',
    tarKey: `${receiptId}.tar`,
    indexKey: `${receiptId}.index.jsonl`,
    members: ['1.2.3/1.2.3.1/1.2.3.1.1.dcm', '1.2.3/1.2.3.1/1.2.3.1.2.dcm'],
    tarSubdir: ['StudyInstanceUID', 'SeriesInstanceUID'],
    priority,
    callingAeTitle: 'SCANNER1',
    callingHost: '10.0.0.7',
  };
}
