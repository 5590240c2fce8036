import { hostname } from 'node:os';
import { context, diag, DiagLogLevel, propagation, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';

/** The tracing of a process, as {@link startTracing} set it up. */
export interface Tracing {
  /** Whether spans are recorded and exported (an OTLP endpoint is configured). */
  readonly enabled: boolean;
  /** Exports the spans still buffered and stops; bounded by `timeoutMs` (default 3 s). Idempotent. */
  close(timeoutMs?: number): Promise<void>;
}

const DISABLED: Tracing = { enabled: false, close: () => Promise.resolve() };

/** The standard variables that turn the exporter on. */
export const OTLP_ENDPOINT_VARIABLES = [
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
] as const;

/**
 * Whether traces are exported: an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_ENDPOINT`) and `OTEL_SDK_DISABLED` is not `true`.
 */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  return OTLP_ENDPOINT_VARIABLES.some((name) => (env[name] ?? '').trim() !== '');
}

/**
 * Where spans are posted, by the OTLP rules: the traces endpoint as it is, else the general endpoint with
 * `/v1/traces` appended.
 */
export function tracesUrl(env: NodeJS.ProcessEnv = process.env): string {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() ?? '';
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * Starts exporting the process's spans over OTLP/HTTP (JSON) with `service.name` = `serviceName`, when
 * {@link tracingWanted}. Otherwise nothing is registered: the OpenTelemetry API stays its no-op self, spans
 * cost a function call and no `traceparent` is sent. The SDK is only loaded when tracing is on. The
 * endpoint, headers and timeout come from the standard `OTEL_EXPORTER_OTLP_*` variables, the batching
 * from `OTEL_BSP_*`; `OTEL_RESOURCE_ATTRIBUTES` adds resource attributes.
 */
export async function startTracing(
  serviceName: string,
  logger?: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Tracing> {
  if (!tracingWanted(env)) return DISABLED;
  const [{ AsyncLocalStorageContextManager }, core, sdk, exporter, resources, semconv] = await Promise.all([
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
  ]);
  if (logger) {
    // Export failures (collector away) are worth a line, not a crash; the SDK reports them through diag.
    const log = logger.child({ component: 'tracing' });
    diag.setLogger(
      {
        error: (message: string) => log.warn(message),
        warn: (message: string) => log.warn(message),
        info: (message: string) => log.debug(message),
        debug: () => undefined,
        verbose: () => undefined,
      },
      { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
  }
  const resource = resources
    .resourceFromAttributes({
      [semconv.ATTR_SERVICE_NAME]: serviceName,
      [semconv.ATTR_SERVICE_NAMESPACE]: 'dicomflow',
      [semconv.ATTR_SERVICE_INSTANCE_ID]: `${hostname()}:${process.pid}`,
    })
    .merge(resources.detectResources({ detectors: [resources.resourceAttributesEnvDetector] }))
    // The service's own name wins over OTEL_SERVICE_NAME: one suite, one name per service.
    .merge(resources.resourceFromAttributes({ [semconv.ATTR_SERVICE_NAME]: serviceName }));
  const num = (name: string): number | undefined => {
    const value = Number(env[name]);
    return env[name] !== undefined && Number.isFinite(value) && value > 0 ? value : undefined;
  };
  const processor = new sdk.BatchSpanProcessor({
    exporter: new exporter.OTLPTraceExporter({ url: tracesUrl(env) }),
    scheduledDelayMillis: num('OTEL_BSP_SCHEDULE_DELAY') ?? 5000,
    maxQueueSize: num('OTEL_BSP_MAX_QUEUE_SIZE') ?? 2048,
    maxExportBatchSize: num('OTEL_BSP_MAX_EXPORT_BATCH_SIZE') ?? 512,
    exportTimeoutMillis: num('OTEL_BSP_EXPORT_TIMEOUT') ?? 30_000,
  });
  const provider = new sdk.TracerProvider({ resource, spanProcessors: [processor] });
  const contextManager = new AsyncLocalStorageContextManager();
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  logger?.info({ url: tracesUrl(env) }, 'exporting traces');

  let closing: Promise<void> | undefined;
  return {
    enabled: true,
    close(timeoutMs = 3000) {
      closing ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            logger?.warn({ timeoutMs }, 'exporting the last spans took too long; some are lost');
            resolve();
          }, timeoutMs);
        });
        try {
          await Promise.race([provider.shutdown(), timedOut]);
        } catch (err) {
          logger?.warn({ err }, 'exporting the last spans failed');
        } finally {
          clearTimeout(timer);
          trace.disable();
          propagation.disable();
          context.disable();
          diag.disable();
        }
      })();
      return closing;
    },
  };
}
