import { collectDefaultMetrics, Registry } from 'prom-client';

/** Prefix of every DicomFlow metric. */
export const METRIC_PREFIX = 'dicomflow_';

/**
 * A Prometheus registry for one service: Node.js process metrics (`dicomflow_process_cpu_seconds_total`,
 * heap, event loop lag, ...) and a `service` label on every series. Register service metrics on it too.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return registry;
}
