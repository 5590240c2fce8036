import { Counter, type Registry } from 'prom-client';

/** The sender's Prometheus metrics. */
export interface SenderMetrics {
  readonly instancesStored: Counter;
}

/** Registers the sender's metrics on `registry`. */
export function createSenderMetrics(registry: Registry): SenderMetrics {
  const registers = [registry];
  return {
    instancesStored: new Counter({
      name: 'dicomflow_sender_instances_stored_total',
      help: 'Instances a destination acknowledged (success or warning)',
      registers,
    }),
  };
}
