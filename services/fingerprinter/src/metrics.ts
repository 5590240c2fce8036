import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The fingerprinter's Prometheus metrics. */
export interface FingerprinterMetrics {
  readonly flowsActive: Gauge;
  readonly flowFilesInvalid: Gauge;
  readonly flowReloads: Counter;
  readonly receiptsMatched: Counter;
  readonly runsStarted: Counter<'flow'>;
  readonly matchSeconds: Histogram;
}

/** Registers the fingerprinter's metrics on `registry`. */
export function createFingerprinterMetrics(registry: Registry): FingerprinterMetrics {
  const registers = [registry];
  return {
    flowsActive: new Gauge({
      name: 'dicomflow_fingerprinter_flows_active',
      help: 'Valid flow files loaded and matching',
      registers,
    }),
    flowFilesInvalid: new Gauge({
      name: 'dicomflow_fingerprinter_flow_files_invalid',
      help: 'Flow files skipped because they are invalid',
      registers,
    }),
    flowReloads: new Counter({
      name: 'dicomflow_fingerprinter_flow_reloads_total',
      help: 'Loads of the flow directory',
      registers,
    }),
    receiptsMatched: new Counter({
      name: 'dicomflow_fingerprinter_receipts_matched_total',
      help: 'Receipts evaluated against the flows (each delivery counts)',
      registers,
    }),
    runsStarted: new Counter({
      name: 'dicomflow_fingerprinter_flow_matched_total',
      help: 'flow.matched messages published, by flow file (a redelivered receipt publishes again)',
      labelNames: ['flow'],
      registers,
    }),
    matchSeconds: new Histogram({
      name: 'dicomflow_fingerprinter_receipt_seconds',
      help: 'Time to read a receipt index, match every flow and publish the runs',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}
