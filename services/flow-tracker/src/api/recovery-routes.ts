import { randomUUID } from 'node:crypto';
import type { TSchema, Static } from '@sinclair/typebox';
import type { DataSource } from 'typeorm';
import type { FastifyInstance } from 'fastify';
import type { Broker, PublishOptions } from '@dicomflow/broker';
import {
  rerunMessageId,
  rerunRunIdFor,
  resendMessageId,
  validateWith,
  type MessageOf,
  type SchemaRoutingKey,
} from '@dicomflow/messages';
import { errorKind, GoneError, HttpError, PermanentError, type Logger } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import { RUN_STATUS, RunEntity, type RunRow } from '../db/entities.js';
import { ownFlowFinished, rerunReceipt, targetsText } from './recovery-facts.js';
import { RerunBody, ResendBody, RunParams, statusName } from './schemas.js';

/** What the recovery routes need. */
export interface RecoveryDeps {
  readonly dataSource: DataSource;
  readonly storage: Pick<Storage, 'stat'>;
  /** The tracker's broker once connected (requests before that are answered 503). */
  readonly broker: () => Pick<Broker, 'publish'> | undefined;
  readonly logger: Logger;
}

/**
 * Operators' recovery, for a run that is sent (4) or failed (400); 404 for an unknown run, 409 for one in
 * progress or one without what the request needs. Both answer 202 once the request is published
 * (confirmed): the work itself happens in the sender or the fingerprinter, and shows on the run.
 *
 * - `POST /runs/:id/resend` (body optional: `{ "destinations": [...] }`, DICOM nodes `{ host, port, ae_title }`
 *   or DICOMweb servers `{ url }`; default the run's own destinations and return-to-sender ports): publishes
 *   the run's `flow.finished` again with a `resend`, so the sender delivers the stored output again, every
 *   instance.
 * - `POST /runs/:id/rerun`: publishes `flow.rerun` for a new run of the same flow file on the same receipt;
 *   the fingerprinter matches it with the flow file as loaded now (fixed, typically).
 */
export function registerRecoveryRoutes(app: FastifyInstance, deps: RecoveryDeps): void {
  app.post<{ Params: RunParams }>(
    '/runs/:id/resend',
    { schema: { params: RunParams } },
    async (request, reply) => {
      const body = parsed(ResendBody, request.body);
      const run = await settledRun(deps, request.params.id, 'resend it');
      const finished = await ownFlowFinished(deps.dataSource, run.id);
      if (!finished)
        throw new HttpError(
          409,
          run.status === RUN_STATUS.failed && run.failureReason?.startsWith('send-') !== true
            ? `run ${run.id} has no output to resend: it failed before its last model finished (${run.failureReason ?? 'no reason recorded'}); rerun it instead`
            : `the tracker no longer has the flow.finished of run ${run.id} (its events were removed by retention?); rerun it instead`,
        );
      await requireObject(deps, finished.output, `the output of run ${run.id}`);
      const destinations = body.destinations ?? finished.destinations;
      const returnToSender =
        body.destinations === undefined ? finished.returnToSender : { ...finished.returnToSender, ports: [] };
      const targets = targetsText({ destinations, returnToSender });
      if (targets.length === 0)
        throw new HttpError(
          409,
          `run ${run.id} has no destinations to resend to: name them ({"destinations": [{"host": ..., "port": ..., "ae_title": ...} or {"url": ...}]})`,
        );
      const resend = { id: randomUUID(), requestedAt: new Date().toISOString() };
      await publish(
        deps,
        'flow.finished',
        { ...finished, destinations, returnToSender, resend },
        // An operator waits for it: ahead of runs finishing meanwhile.
        { messageId: resendMessageId(run.id, resend.id), correlationId: run.id, priority: 5 },
      );
      deps.logger.info({ runId: run.id, resendId: resend.id, targets: targets.length }, 'resend requested');
      return reply
        .code(202)
        .send({ runId: run.id, resendId: resend.id, requestedAt: resend.requestedAt, destinations: targets });
    },
  );

  app.post<{ Params: RunParams }>(
    '/runs/:id/rerun',
    { schema: { params: RunParams } },
    async (request, reply) => {
      parsed(RerunBody, request.body);
      const run = await settledRun(deps, request.params.id, 'rerun it');
      const receipt = await rerunReceipt(deps.dataSource, run);
      if (!receipt || run.flowFile === '')
        throw new HttpError(
          409,
          `the tracker has no record of the receipt or flow file of run ${run.id} (its events were removed?)`,
        );
      await requireObject(
        deps,
        { bucket: receipt.bucket, key: receipt.indexKey },
        `receipt ${receipt.receiptId} of run ${run.id}`,
      );
      const rerunId = randomUUID();
      const runId = rerunRunIdFor(run.id, rerunId);
      const requestedAt = new Date().toISOString();
      await publish(
        deps,
        'flow.rerun',
        {
          runId,
          rerunOf: run.id,
          rerunId,
          requestedAt,
          flowFile: run.flowFile,
          flowName: run.name,
          flowVersion: run.version,
          ...receipt,
        },
        { messageId: rerunMessageId(run.id, rerunId), correlationId: runId, priority: 5 },
      );
      deps.logger.info({ runId, rerunOf: run.id, flowFile: run.flowFile }, 'rerun requested');
      return reply.code(202).send({ runId, rerunOf: run.id, rerunId, requestedAt, flowFile: run.flowFile });
    },
  );
}

/** The request body checked against `schema`; no body counts as `{}`. Unknown fields are refused. */
function parsed<S extends TSchema>(schema: S, body: unknown): Static<S> {
  const result = validateWith(schema, body ?? {});
  if (!result.ok) throw new PermanentError(`invalid request body: ${result.error}`);
  return result.value;
}

/** The run, when it is sent or failed: 404 when unknown, 409 while in progress. */
async function settledRun(deps: RecoveryDeps, id: string, what: string): Promise<RunRow> {
  const run = await deps.dataSource.getRepository(RunEntity).findOne({ where: { id } });
  if (!run) throw new GoneError(`no run ${id}`);
  if (run.status !== RUN_STATUS.sent && run.status !== RUN_STATUS.failed)
    throw new HttpError(
      409,
      `run ${id} is in progress (status ${run.status}, ${statusName(run.status)}): ${what} once it is sent (4) or failed (400)`,
    );
  return run;
}

/** 409 when the object is gone from S3 (retention removed it, say), 503 when S3 does not answer. */
async function requireObject(
  deps: RecoveryDeps,
  where: { bucket: string; key: string },
  what: string,
): Promise<void> {
  let info;
  try {
    info = await deps.storage.stat(where.bucket, where.key);
  } catch (err) {
    throw new HttpError(503, `S3 is unavailable, try again later (${messageOf(err)})`, { cause: err });
  }
  if (!info) throw new HttpError(409, `${what} is gone from S3 (${where.bucket}/${where.key})`);
}

/** Publishes (confirmed); RabbitMQ away or not connected yet is a 503 the operator may retry. */
async function publish<K extends SchemaRoutingKey>(
  deps: RecoveryDeps,
  key: K,
  body: MessageOf<K>,
  options: PublishOptions,
): Promise<void> {
  const broker = deps.broker();
  if (!broker) throw new HttpError(503, 'not connected to RabbitMQ yet, try again later');
  try {
    await broker.publish(key, body, options);
  } catch (err) {
    // An invalid body is a fault of ours (a 500), not of the request.
    if (errorKind(err) === 'permanent')
      throw new Error(`cannot publish ${key}: ${messageOf(err)}`, { cause: err });
    throw new HttpError(503, `RabbitMQ is unavailable, try again later (${messageOf(err)})`, { cause: err });
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
