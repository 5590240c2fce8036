import { And, LessThan, MoreThanOrEqual, type DataSource, type FindOptionsWhere } from 'typeorm';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { GoneError, PermanentError } from '@dicomflow/runtime';
import { RunEntity, SendRetryEntity, StepEntity, type RunRow } from '../db/entities.js';
import { recoveryView } from './recovery-facts.js';
import { runDetailView, runView } from './run-views.js';
import { RunParams, RunsQuery, statusCode } from './schemas.js';

/**
 * `GET /runs` (filtered by status, flow and time range; newest first, ties by id, so pages are stable) and
 * `GET /runs/:id` (with steps, timings, errors, delivery retries, resends and reruns; 404 when unknown).
 */
export function registerRunRoutes(app: FastifyInstance, dataSource: DataSource): void {
  app.get<{ Querystring: RunsQuery }>(
    '/runs',
    // Checked before validation: fastify's validator drops unknown parameters, and a misspelt filter
    // (`stauts=4`) silently returning every run would mislead.
    { schema: { querystring: RunsQuery }, preValidation: rejectUnknownParameters },
    async (request) => {
      const q = request.query;
      const base: FindOptionsWhere<RunRow> = {};
      if (q.status !== undefined) base.status = statusCode(q.status);
      const from = q.from === undefined ? undefined : new Date(q.from);
      const to = q.to === undefined ? undefined : new Date(q.to);
      if (from && to) base.ts = And(MoreThanOrEqual(from), LessThan(to));
      else if (from) base.ts = MoreThanOrEqual(from);
      else if (to) base.ts = LessThan(to);
      // A flow is known by its name or, when it has none, its file.
      const where =
        q.flow === undefined
          ? base
          : [
              { ...base, name: q.flow },
              { ...base, flowFile: q.flow },
            ];
      const [rows, total] = await dataSource.getRepository(RunEntity).findAndCount({
        where,
        order: { ts: 'DESC', id: 'DESC' },
        skip: q.offset,
        take: q.limit,
      });
      return { runs: rows.map(runView), total, limit: q.limit, offset: q.offset };
    },
  );

  app.get<{ Params: RunParams }>('/runs/:id', { schema: { params: RunParams } }, async (request) => {
    const { id } = request.params;
    const run = await dataSource.getRepository(RunEntity).findOne({ where: { id } });
    if (!run) throw new GoneError(`no run ${id}`);
    const steps = await dataSource
      .getRepository(StepEntity)
      .find({ where: { runId: id }, order: { step: 'ASC' } });
    const retries = await dataSource
      .getRepository(SendRetryEntity)
      .find({ where: { runId: id }, order: { target: 'ASC' } });
    const { latestResendAt, ...recovery } = await recoveryView(dataSource, run);
    // Retries from before the latest resend belong to an earlier delivery: the run no longer waits for them.
    const current = latestResendAt ? retries.filter((retry) => retry.retryingAt >= latestResendAt) : retries;
    return { ...runDetailView(run, steps, current), ...recovery };
  });
}

const KNOWN_PARAMETERS = Object.keys(RunsQuery.properties);

function rejectUnknownParameters(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  const query = request.query as Record<string, unknown>;
  const unknown = Object.keys(query).filter((name) => !KNOWN_PARAMETERS.includes(name));
  if (unknown.length === 0) {
    done();
    return;
  }
  done(
    new PermanentError(
      `unknown query parameter ${unknown.map((name) => `"${name}"`).join(', ')}; known: ${KNOWN_PARAMETERS.join(', ')}`,
    ),
  );
}
