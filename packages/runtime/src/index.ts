export type { Logger } from 'pino';
export { createLogger, PHI_REDACT_PATHS, REDACTED } from './logger.js';
export type { CreateLoggerOptions } from './logger.js';
export { PermanentError, TransientError, GoneError, errorKind, isOutage } from './errors.js';
export type { ErrorKind } from './errors.js';
export { computeBackoff, retryUntilDone, sleep } from './backoff.js';
export type { BackoffOptions, UntilDone } from './backoff.js';
export { createMetricsRegistry, METRIC_PREFIX } from './metrics.js';
export type { ReadinessCheck, CheckResult } from './readiness.js';
export { DEFAULT_CHECK_TIMEOUT_MS } from './readiness.js';
export { createHttpServer } from './http-server.js';
export { HttpError } from './http-error.js';
export { bearerTokenCheck } from './bearer-token.js';
export type { HttpServer, HttpServerOptions } from './http-server.js';
export { runService, DEFAULT_GRACE_MS } from './run-service.js';
export { startTracing, tracingWanted, OTLP_ENDPOINT_VARIABLES, type Tracing } from './tracing.js';
export {
  activeTraceContext,
  activeTraceIds,
  extractTraceContext,
  failSpan,
  injectTraceHeaders,
  inSpan,
  markSpanError,
  recordSpan,
  startSpan,
  traceContextOf,
  withTraceContext,
  type Span,
  type SpanAttributes,
  type SpanOptions,
  type TraceContext,
} from './spans.js';
export { shutdownStep } from './shutdown-step.js';
export { readTlsFiles } from './tls-files.js';
export type { TlsFiles, TlsMaterial } from './tls-files.js';
export type { ShutdownStep } from './shutdown-step.js';
export type { ServiceHandle, RunServiceOptions } from './run-service.js';
export { DirectoryWatcher, type DirectoryWatcherOptions } from './directory-watcher.js';
export { noteBufferBytes, startBufferReclaimer, startProcessBufferReclaimer } from './buffer-reclaimer.js';
export type { BufferReclaimer, BufferReclaimerOptions } from './buffer-reclaimer.js';
export {
  createJanitorCounter,
  reportDeletions,
  retentionCutoff,
  runJanitorSteps,
  startJanitor,
} from './janitor.js';
export type { Deletions, Janitor, JanitorCounter, JanitorOptions, JanitorStep } from './janitor.js';
export { acknowledgePromptly, quickAckAvailable } from './tcp-quickack.js';
