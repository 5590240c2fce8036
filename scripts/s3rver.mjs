// Starts s3rver, a local S3-compatible server used by the tests (production uses MinIO).
// Usage: node scripts/s3rver.mjs [port] [directory]
import S3rver from 's3rver';
import { mkdirSync } from 'node:fs';

const port = Number(process.argv[2] ?? process.env.S3_PORT ?? 9000);
const directory = process.argv[3] ?? '/tmp/dicomflow-s3rver';
mkdirSync(directory, { recursive: true });
const server = new S3rver({ port, address: '127.0.0.1', silent: true, directory, resetOnClose: false });
await server.run();
console.log(`s3rver listening on 127.0.0.1:${port} (data in ${directory})`);
const stop = () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
