export { testStorageConfig, uniqueBucketName, removeBucketAndObjects } from './s3-test-config.js';
export { generatedStream, sha256Of } from './generated-stream.js';
export type { GeneratedStream } from './generated-stream.js';
