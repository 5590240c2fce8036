// Starts s3rver, a local S3-compatible server used by the tests (production uses MinIO).
// Usage: node scripts/s3rver.mjs [port] [directory]   (port 0 picks a free port)
// Prints one "s3rver listening on 127.0.0.1:<port> ..." line once it accepts requests, naming the port it
// really bound; SIGTERM/SIGINT stop it cleanly.
import S3rver from 's3rver';
import { mkdirSync } from 'node:fs';
import process from 'node:process';

const port = Number(process.argv[2] ?? process.env.S3_PORT ?? 9000);
const directory = process.argv[3] ?? '/tmp/dicomflow-s3rver';
mkdirSync(directory, { recursive: true });
const server = new S3rver({ port, address: '127.0.0.1', silent: true, directory, resetOnClose: false });
let bound;
try {
  bound = await server.run();
} catch (err) {
  process.stderr.write(
    `s3rver could not listen on 127.0.0.1:${port}: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
}
process.stdout.write(`s3rver listening on 127.0.0.1:${bound.port} (data in ${directory})\n`);
const stop = () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
