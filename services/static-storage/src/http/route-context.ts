import type { Logger } from '@dicomflow/runtime';
import type { StaticStorageMetrics } from '../metrics.js';
import type { StaticItem, StaticStore } from '../store/static-store.js';
import type { DirectorySync } from '../sync/directory-sync.js';
import type { StaticItemBody } from './schemas.js';

/** What the routes share. */
export interface RouteContext {
  readonly store: StaticStore;
  readonly sync: Pick<DirectorySync, 'holds'>;
  readonly metrics: StaticStorageMetrics;
  readonly logger: Logger;
  /** STATIC_UPLOAD_TOKEN; empty disables upload and delete. */
  readonly uploadToken: string;
  /** Where uploads are received before they go to S3. */
  readonly tempDirectory: string;
  /** Largest upload accepted, in bytes (STATIC_MAX_UPLOAD_BYTES). */
  readonly maxUploadBytes: number;
}

/** The API shape of a stored item. */
export function itemBody(item: StaticItem): StaticItemBody {
  return {
    name: item.name,
    size: item.size,
    sha256: item.sha256,
    updated: item.updated.toISOString(),
    source: item.source,
  };
}
