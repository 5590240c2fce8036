import { Counter, type Registry } from 'prom-client';

/** static-storage's Prometheus metrics. */
export interface StaticStorageMetrics {
  readonly syncs: Counter<'outcome'>;
  readonly stored: Counter<'source'>;
  readonly storedBytes: Counter<'source'>;
  readonly removed: Counter<'source'>;
  readonly downloads: Counter;
}

/** Registers static-storage's metrics on `registry`. */
export function createStaticStorageMetrics(registry: Registry): StaticStorageMetrics {
  const registers = [registry];
  return {
    syncs: new Counter({
      name: 'dicomflow_static_storage_syncs_total',
      help: 'Syncs of the static folder to S3, by outcome (ok, failed)',
      labelNames: ['outcome'],
      registers,
    }),
    stored: new Counter({
      name: 'dicomflow_static_storage_stored_total',
      help: 'Tars written to S3, by source (directory: folder sync; http: PUT)',
      labelNames: ['source'],
      registers,
    }),
    storedBytes: new Counter({
      name: 'dicomflow_static_storage_stored_bytes_total',
      help: 'Bytes of tars written to S3, by source (directory: folder sync; http: PUT)',
      labelNames: ['source'],
      registers,
    }),
    removed: new Counter({
      name: 'dicomflow_static_storage_removed_total',
      help: 'Tars removed from S3, by source (directory: its file left the folder; http: DELETE)',
      labelNames: ['source'],
      registers,
    }),
    downloads: new Counter({
      name: 'dicomflow_static_storage_downloads_total',
      help: 'Tars served over HTTP',
      registers,
    }),
  };
}
