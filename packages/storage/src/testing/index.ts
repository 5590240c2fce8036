export { testStorageConfig, uniqueBucketName, removeBucketAndObjects } from './s3-test-config.js';
export { generatedStream, sha256Of } from './generated-stream.js';
export type { GeneratedStream } from './generated-stream.js';
export { startCountingRelay } from './counting-relay.js';
export type { CountingRelay } from './counting-relay.js';
export { minioBinary, startMinio } from './minio-process.js';
export type { MinioOptions, MinioProcess } from './minio-process.js';
export { beginIncompleteUpload } from './incomplete-upload.js';
