import { runReceiverWorker } from './worker-process.js';

// The entry of a receiver worker process (RECEIVER_WORKERS > 1), forked by the service's primary.
runReceiverWorker();
