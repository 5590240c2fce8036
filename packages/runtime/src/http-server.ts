import type { AddressInfo } from 'node:net';
import { fastify } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { errorKind } from './errors.js';
import { DEFAULT_CHECK_TIMEOUT_MS, runReadinessChecks } from './readiness.js';
import type { ReadinessCheck } from './readiness.js';

export interface HttpServerOptions {
  logger: Logger;
  port: number;
  /** Defaults to `0.0.0.0`. */
  host?: string;
  /** What `/readyz` checks. */
  checks: readonly ReadinessCheck[];
  /** What `/metrics` serves. */
  registry: Registry;
  /** Extra facts shown by `/readyz` (queue depth, open groups, ...). */
  details?: () => Record<string, unknown>;
  /** Time limit of each readiness check; defaults to 2 s. */
  checkTimeoutMs?: number;
}

export interface HttpServer {
  /** Register service routes here before `listen()`. */
  app: FastifyInstance;
  /** Starts listening; returns the bound port (useful with port 0). */
  listen(): Promise<{ port: number }>;
  /** Stops listening and waits for in-flight requests; safe to call more than once. */
  close(): Promise<void>;
}

/**
 * The HTTP server every service runs: `/healthz` (alive), `/readyz` (dependencies reachable),
 * `/metrics` (Prometheus), plus any routes the service adds. Errors thrown by routes map to
 * `{ error }` responses: PermanentError 400, GoneError 404, an error's own 4xx/5xx `statusCode`
 * (fastify validation, body parsing), anything else 500; stacks never leave the process.
 */
export function createHttpServer(opts: HttpServerOptions): HttpServer {
  const { logger } = opts;
  const app = fastify({
    loggerInstance: httpLogger(logger),
    // Route schemas reuse @dicomflow/messages schemas, which carry annotations for editors (a flow
    // destination's union, say); ajv in strict mode refuses keywords it was not told about.
    ajv: { customOptions: { keywords: ['errorMessage', 'patternErrorMessage'] } },
  });

  app.get('/healthz', () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const { ready, results } = await runReadinessChecks(
      opts.checks,
      opts.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS,
    );
    if (!ready) logger.warn({ checks: results }, 'not ready');
    return reply
      .code(ready ? 200 : 503)
      .send({ status: ready ? 'ready' : 'not ready', checks: results, details: readDetails(opts.details) });
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(body);
  });

  app.setErrorHandler<Error>((err, request, reply) => {
    const statusCode = statusFor(err);
    // The route pattern, not the URL: URLs may carry identifiers we must not log.
    const route = request.routeOptions.url;
    if (statusCode >= 500) {
      logger.error({ err, method: request.method, route, statusCode }, 'request failed');
    } else {
      logger.info({ error: err.message, method: request.method, route, statusCode }, 'request rejected');
    }
    return reply.code(statusCode).send({ error: err.message });
  });

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));

  let closing: Promise<void> | undefined;
  return {
    app,
    async listen() {
      await app.listen({ port: opts.port, host: opts.host ?? '0.0.0.0' });
      const { port } = app.server.address() as AddressInfo;
      logger.info({ port }, 'http server listening');
      return { port };
    },
    close() {
      closing ??= app.close();
      return closing;
    },
  };
}

/** fastify logs every request at info: its logger sits at warn (or the service's level if higher). */
function httpLogger(logger: Logger): FastifyBaseLogger {
  return logger.child(
    { component: 'http' },
    { level: logger.isLevelEnabled('warn') ? 'warn' : logger.level },
  );
}

function statusFor(err: unknown): number {
  const kind = errorKind(err);
  if (kind === 'permanent') return 400;
  if (kind === 'gone') return 404;
  const own = typeof err === 'object' && err !== null && 'statusCode' in err ? err.statusCode : undefined;
  return typeof own === 'number' && Number.isInteger(own) && own >= 400 && own <= 599 ? own : 500;
}

function readDetails(details: (() => Record<string, unknown>) | undefined): Record<string, unknown> {
  if (!details) return {};
  try {
    return details();
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}
