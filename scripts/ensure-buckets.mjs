// Creates the suite's S3 buckets (S3_BUCKET_INCOMING, S3_BUCKET_RUNS, S3_BUCKET_STATIC) unless they exist,
// retrying while S3 is still starting. Reads the configuration like any service (conf.d, then the
// environment). compose.yaml runs it once before the services; `npm run stack` runs it too.
// Usage: node scripts/ensure-buckets.mjs   (after `npm run build`)
import { loadConfig, storageConfigFrom } from '@dicomflow/config';
import { createStorage } from '@dicomflow/storage';
import console from 'node:console';
import process from 'node:process';
import { setTimeout } from 'node:timers/promises';

const ATTEMPTS = 30;
const config = loadConfig('sender');
const storage = createStorage(storageConfigFrom(config));
const buckets = [config.S3_BUCKET_INCOMING, config.S3_BUCKET_RUNS, config.S3_BUCKET_STATIC];

for (let attempt = 1; ; attempt++) {
  try {
    for (const bucket of buckets) await storage.ensureBucket(bucket);
    console.log(`buckets ready on ${config.S3_ENDPOINT}:${config.S3_PORT}: ${buckets.join(', ')}`);
    break;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (attempt >= ATTEMPTS) {
      console.error(`cannot create the buckets on ${config.S3_ENDPOINT}:${config.S3_PORT}: ${reason}`);
      process.exit(1);
    }
    console.error(`S3 not ready (${reason}); retrying (${attempt}/${ATTEMPTS})`);
    await setTimeout(2000);
  }
}
