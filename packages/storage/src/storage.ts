import { createReadStream } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { stat as statFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { Client, type BucketItem } from 'minio';
import { readTlsFiles } from '@dicomflow/runtime';
import { exactSize, readAtMost } from './byte-limits.js';
import { DOWNLOAD_URL_SECONDS, getWithClient, openDownload } from './download.js';
import {
  incompleteUploadIds,
  partedUpload,
  streamedPut,
  uploadParts,
  type PartedUpload,
} from './multipart-upload.js';
import { objectHeaders, sanitizeEtag } from './object-headers.js';
import { StorageError, toStorageError, type StorageErrorContext } from './storage-error.js';

/** How to reach the S3 server (MinIO, in production and in tests). */
export interface StorageConfig {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  /** Objects larger than this go up as multipart uploads of this part size (S3_PART_SIZE). */
  partSize: number;
  region?: string;
  /** PEM file of the CA(s) to trust for HTTPS instead of the system's (S3_CA); used when `useSSL`. */
  ca?: string;
}

/**
 * The HTTPS agent trusting `cfg.ca` (read now: a missing or wrong file throws a PermanentError naming
 * it), or undefined for the client's default agent (system CAs, or plain HTTP).
 */
function httpsAgentFor(cfg: StorageConfig): HttpsAgent | undefined {
  if (!cfg.useSSL || cfg.ca === undefined || cfg.ca === '') return undefined;
  const { ca } = readTlsFiles({ ca: cfg.ca }, 'S3');
  // keepAlive as the client's own default agent has it; certificates are always verified.
  return new HttpsAgent({ ca, keepAlive: true, rejectUnauthorized: true });
}

/** What `stat` reports about a stored object. */
export interface ObjectInfo {
  size: number;
  etag: string;
  /** User metadata (without the `x-amz-meta-` prefix) plus standard properties such as `content-type`. */
  metadata: Record<string, string>;
}

/** One entry of a listing. */
export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
}

/** A multipart upload begun and neither completed nor aborted. */
export interface IncompleteUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/** The object-store operations the services use. Every failure is a {@link StorageError}. */
export interface Storage {
  /** Creates the bucket unless it exists; safe when several processes race to create it. */
  ensureBucket(bucket: string): Promise<void>;
  /**
   * Uploads a stream of exactly `size` bytes. Up to the part size it is sent as one streamed PUT (nothing
   * is held in memory); above it, as a multipart upload that holds one part at a time.
   */
  putStream(
    bucket: string,
    key: string,
    stream: Readable,
    size: number,
    metadata?: Record<string, string>,
  ): Promise<{ etag: string }>;
  /**
   * Begins a multipart upload of `key` whose parts the caller sends as they come ({@link PartedUpload}),
   * for an object whose bytes arrive over a long time (a receipt written while its association runs).
   */
  beginUpload(bucket: string, key: string, metadata?: Record<string, string>): Promise<PartedUpload>;
  /** Uploads a small in-memory body (e.g. an index.json). */
  putBuffer(
    bucket: string,
    key: string,
    body: Buffer | string,
    contentType?: string,
  ): Promise<{ etag: string }>;
  /** Uploads a local file, streamed. */
  putFile(bucket: string, key: string, path: string): Promise<{ etag: string }>;
  /** Opens an object for reading; a missing object fails with kind `gone`. */
  getStream(bucket: string, key: string): Promise<Readable>;
  /** Reads a small object whole; refuses (kind `permanent`) one larger than `maxBytes` (default 64 MiB). */
  getBuffer(bucket: string, key: string, maxBytes?: number): Promise<Buffer>;
  /** The object's size, ETag and metadata, or `undefined` when it does not exist. */
  stat(bucket: string, key: string): Promise<ObjectInfo | undefined>;
  /** Deletes an object; deleting one that is not there succeeds. */
  remove(bucket: string, key: string): Promise<void>;
  /**
   * Deletes objects (in batches of 1,000 per request); keys that are not there count as deleted. Fails
   * when the server refuses any of them.
   */
  removeObjects(bucket: string, keys: readonly string[]): Promise<void>;
  /** Deletes an empty bucket; deleting one that is not there succeeds (used by tests to clean up). */
  removeBucket(bucket: string): Promise<void>;
  /** Every object whose key starts with `prefix` (recursive, in key order). */
  list(bucket: string, prefix?: string): Promise<ListedObject[]>;
  /**
   * The ids of multipart uploads of `key` begun and neither completed nor aborted. Per key, because MinIO
   * lists incomplete uploads only for a whole object name (with a shorter prefix it answers with none).
   */
  incompleteUploads(bucket: string, key: string): Promise<string[]>;
  /**
   * Every incomplete multipart upload of the bucket (MinIO lists them for the whole bucket with an empty
   * prefix, though for no shorter prefix of a key).
   */
  listIncompleteUploads(bucket: string): Promise<IncompleteUpload[]>;
  /** Aborts one multipart upload, freeing its parts; aborting one that is gone succeeds. */
  abortUpload(bucket: string, key: string, uploadId: string): Promise<void>;
  /** Readiness probe: resolves when the server answers an authenticated request. */
  check(): Promise<void>;
}

/** Keys per DeleteObjects request (the S3 limit). */
const REMOVE_BATCH = 1000;

const DEFAULT_MAX_BUFFER_BYTES = 64 * 1024 * 1024;
const CHECK_TIMEOUT_MS = 5_000;
/** How long a failed multipart upload's clean-up may take before the failure is reported anyway. */
const ABORT_TIMEOUT_MS = 5_000;

async function guarded<T>(context: StorageErrorContext, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    throw toStorageError(err, context);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, context: StorageErrorContext): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new StorageError('transient', `storage ${context.operation} timed out after ${ms} ms`, context));
    }, ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

export type { PartedUpload };

/** Creates a {@link Storage} backed by the minio client. Nothing connects until the first call. */
export function createStorage(cfg: StorageConfig): Storage {
  const agent = httpsAgentFor(cfg);
  const client = new Client({
    endPoint: cfg.endPoint,
    port: cfg.port,
    useSSL: cfg.useSSL,
    accessKey: cfg.accessKey,
    secretKey: cfg.secretKey,
    partSize: cfg.partSize,
    ...(cfg.region === undefined ? {} : { region: cfg.region }),
    ...(agent === undefined ? {} : { transportAgent: agent }),
    // minio would replay a consumed stream on a 5xx; callers retry whole operations with backoff instead.
    retryOptions: { disableRetry: true },
  });
  // Over plain HTTP minio signs a SHA-256 of every body, which needs the whole body before sending.
  // UNSIGNED-PAYLOAD (accepted by MinIO and S3) is what lets putStream stream; buffered bodies still
  // carry a Content-MD5 that the server verifies.
  client.enableSHA256 = false;

  /**
   * Aborts the multipart upload a failed putStream left, so that no incomplete upload stays behind. Best
   * effort: with the server unreachable this fails, and the caller's retry aborts it before it starts
   * anew (uploadParts).
   */
  async function abortIncomplete(bucket: string, key: string): Promise<void> {
    const context = { operation: 'abortMultipartUpload', bucket, key };
    const abortAll = async (): Promise<void> => {
      for (const uploadId of await incompleteUploadIds(client, bucket, key)) {
        await client.abortMultipartUpload(bucket, key, uploadId);
      }
    };
    await withTimeout(abortAll(), ABORT_TIMEOUT_MS, context).catch(() => undefined);
  }

  /**
   * Opens an object's body: a presigned GET (signed here, no request) read with fetch (download.ts). With a
   * CA of our own (S3_CA) the client's GET instead, since the built-in fetch cannot be given a CA per
   * request without a dependency on undici's Agent.
   */
  async function download(context: StorageErrorContext & { bucket: string; key: string }): Promise<Readable> {
    if (agent !== undefined) return getWithClient(client, context);
    const url = await client.presignedGetObject(context.bucket, context.key, DOWNLOAD_URL_SECONDS);
    return openDownload(url, context);
  }

  const storage: Storage = {
    ensureBucket(bucket) {
      const context = { operation: 'ensureBucket', bucket };
      return guarded(context, async () => {
        if (await client.bucketExists(bucket)) return;
        try {
          await client.makeBucket(bucket, cfg.region ?? '');
        } catch (err) {
          const code = toStorageError(err, context).code;
          // Another process created it between our check and our create: that is the outcome we wanted,
          // provided the bucket is really reachable with our credentials.
          if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw err;
          if (!(await client.bucketExists(bucket))) throw err;
        }
      });
    },

    putStream(bucket, key, stream, size, metadata) {
      const context = { operation: 'putStream', bucket, key };
      return guarded(context, async () => {
        if (!Number.isSafeInteger(size) || size < 0) {
          throw new StorageError('permanent', `invalid size ${size} for ${key}`, {
            ...context,
            code: 'InvalidSize',
          });
        }
        const counted = exactSize(size, context);
        const headers = objectHeaders(metadata);
        // Multipart: each part streams from the source as its own PUT (uploadParts); nothing is buffered.
        const upload =
          size > cfg.partSize
            ? uploadParts(client, bucket, key, counted, size, cfg.partSize, headers)
            : streamedPut(client, { bucket, key }, counted, size, headers).then((etag) => ({ etag }));
        try {
          const [, result] = await Promise.all([pipeline(stream, counted), upload]);
          return { etag: sanitizeEtag(result.etag) };
        } catch (err) {
          // A refused request stops reading the body; destroying both ends releases the caller's source
          // (often an open file) instead of leaving it paused forever.
          counted.destroy();
          stream.destroy();
          if (size > cfg.partSize) await abortIncomplete(bucket, key);
          throw err;
        }
      });
    },

    beginUpload(bucket, key, metadata) {
      const context = { operation: 'beginUpload', bucket, key };
      return guarded(context, async () => {
        const uploadId = await client.initiateNewMultipartUpload(bucket, key, objectHeaders(metadata));
        return partedUpload(client, { bucket, key, uploadId });
      });
    },

    putBuffer(bucket, key, body, contentType) {
      const context = { operation: 'putBuffer', bucket, key };
      return guarded(context, async () => {
        const bytes = typeof body === 'string' ? Buffer.from(body) : body;
        const headers = objectHeaders(contentType === undefined ? {} : { 'content-type': contentType });
        const { etag } = await client.putObject(bucket, key, bytes, bytes.length, headers);
        return { etag: sanitizeEtag(etag) };
      });
    },

    async putFile(bucket, key, path) {
      const context = { operation: 'putFile', bucket, key };
      const { size } = await guarded(context, () => statFile(path));
      return storage.putStream(bucket, key, createReadStream(path), size);
    },

    getStream(bucket, key) {
      const context = { operation: 'getStream', bucket, key };
      return guarded(context, () => download(context));
    },

    getBuffer(bucket, key, maxBytes = DEFAULT_MAX_BUFFER_BYTES) {
      const context = { operation: 'getBuffer', bucket, key };
      return guarded(context, async () => readAtMost(await download(context), maxBytes, context));
    },

    async stat(bucket, key) {
      try {
        const info = await client.statObject(bucket, key);
        const metadata: Record<string, string> = {};
        for (const [name, value] of Object.entries(info.metaData))
          metadata[name.toLowerCase()] = String(value);
        return { size: info.size, etag: sanitizeEtag(info.etag), metadata };
      } catch (err) {
        const error = toStorageError(err, { operation: 'stat', bucket, key });
        if (error.kind === 'gone') return undefined;
        throw error;
      }
    },

    remove(bucket, key) {
      // S3 answers 204 for a key that is not there; minio passes that through as success.
      return guarded({ operation: 'remove', bucket, key }, () => client.removeObject(bucket, key));
    },

    removeObjects(bucket, keys) {
      return guarded({ operation: 'removeObjects', bucket }, async () => {
        for (let start = 0; start < keys.length; start += REMOVE_BATCH) {
          const batch = keys.slice(start, start + REMOVE_BATCH);
          const results = await client.removeObjects(bucket, batch);
          const refused = results.find((result) => result?.Error !== undefined);
          if (refused?.Error) {
            throw new StorageError(
              'transient',
              `deleting ${refused.Error.Key ?? 'an object'} failed: ${refused.Error.Message ?? refused.Error.Code ?? 'refused'}`,
              {
                operation: 'removeObjects',
                bucket,
                ...(refused.Error.Code ? { code: refused.Error.Code } : {}),
              },
            );
          }
        }
      });
    },

    async removeBucket(bucket) {
      try {
        await client.removeBucket(bucket);
      } catch (err) {
        const error = toStorageError(err, { operation: 'removeBucket', bucket });
        if (error.kind !== 'gone') throw error;
      }
    },

    list(bucket, prefix = '') {
      return guarded({ operation: 'list', bucket, key: prefix }, async () => {
        const objects: ListedObject[] = [];
        for await (const item of client.listObjectsV2(bucket, prefix, true) as AsyncIterable<BucketItem>) {
          if (item.name !== undefined) {
            objects.push({ key: item.name, size: item.size, lastModified: item.lastModified });
          }
        }
        return objects;
      });
    },

    incompleteUploads(bucket, key) {
      return guarded({ operation: 'incompleteUploads', bucket, key }, () =>
        incompleteUploadIds(client, bucket, key),
      );
    },

    listIncompleteUploads(bucket) {
      return guarded({ operation: 'listIncompleteUploads', bucket }, async () => {
        const found: IncompleteUpload[] = [];
        const uploads = client.listIncompleteUploads(bucket, '', true) as AsyncIterable<{
          key: string;
          uploadId: string;
          initiated: Date;
        }>;
        for await (const upload of uploads) found.push({ ...upload, initiated: new Date(upload.initiated) });
        return found;
      });
    },

    async abortUpload(bucket, key, uploadId) {
      try {
        await client.abortMultipartUpload(bucket, key, uploadId);
      } catch (err) {
        const error = toStorageError(err, { operation: 'abortUpload', bucket, key });
        if (error.kind !== 'gone') throw error;
      }
    },

    async check() {
      const context = { operation: 'check' };
      await guarded(context, () => withTimeout(client.listBuckets(), CHECK_TIMEOUT_MS, context));
    },
  };
  return storage;
}
