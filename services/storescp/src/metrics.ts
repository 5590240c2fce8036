import { Counter, Gauge, type Registry } from 'prom-client';

/** The receiver's Prometheus metrics. */
export interface ReceiverMetrics {
  readonly associationsAccepted: Counter;
  readonly associationsRejected: Counter<'reason'>;
  readonly associationsOpen: Gauge;
  readonly instancesStored: Counter;
  readonly instancesRefused: Counter<'status'>;
  readonly bytesStored: Counter;
  readonly receiptsPublished: Counter;
  readonly groupsCompleted: Counter<'reason'>;
}

/** Registers the receiver's metrics on `registry`. */
export function createReceiverMetrics(registry: Registry): ReceiverMetrics {
  const registers = [registry];
  return {
    associationsAccepted: new Counter({
      name: 'dicomflow_storescp_associations_accepted_total',
      help: 'Associations accepted',
      registers,
    }),
    associationsRejected: new Counter({
      name: 'dicomflow_storescp_associations_rejected_total',
      help: 'Associations rejected, by reason',
      labelNames: ['reason'],
      registers,
    }),
    associationsOpen: new Gauge({
      name: 'dicomflow_storescp_associations_open',
      help: 'Associations open now',
      registers,
    }),
    instancesStored: new Counter({
      name: 'dicomflow_storescp_instances_stored_total',
      help: 'Instances answered with success',
      registers,
    }),
    instancesRefused: new Counter({
      name: 'dicomflow_storescp_instances_refused_total',
      help: 'Instances answered with a failure status, by status (hex)',
      labelNames: ['status'],
      registers,
    }),
    bytesStored: new Counter({
      name: 'dicomflow_storescp_bytes_stored_total',
      help: 'Bytes of instances stored',
      registers,
    }),
    receiptsPublished: new Counter({
      name: 'dicomflow_storescp_receipts_published_total',
      help: 'Receipts published as study.received',
      registers,
    }),
    groupsCompleted: new Counter({
      name: 'dicomflow_storescp_groups_completed_total',
      help: 'Groups completed, by reason: association (released), count (last announced instance), timeout (quiet period), recovered (left by a previous process)',
      labelNames: ['reason'],
      registers,
    }),
  };
}
