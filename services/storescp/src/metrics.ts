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
  readonly stowRequests: Counter<'code'>;
  readonly stowInstancesStored: Counter;
  readonly stowInstancesFailed: Counter<'reason'>;
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
    stowRequests: new Counter({
      name: 'dicomflow_storescp_stow_requests_total',
      help: 'STOW-RS requests answered, by HTTP status code',
      labelNames: ['code'],
      registers,
    }),
    stowInstancesStored: new Counter({
      name: 'dicomflow_storescp_stow_instances_stored_total',
      help: 'Instances received over STOW-RS and stored (in the ReferencedSOPSequence of their answer)',
      registers,
    }),
    stowInstancesFailed: new Counter({
      name: 'dicomflow_storescp_stow_instances_failed_total',
      help: 'Instances received over STOW-RS and not stored, by FailureReason (hex)',
      labelNames: ['reason'],
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
