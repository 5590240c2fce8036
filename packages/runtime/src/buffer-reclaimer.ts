import { memoryUsage } from 'node:process';

/** What the reclaimer needs of V8's `gc` (exposed by `--expose-gc`). */
type GcFunction = (options: { type: 'minor' | 'major' }) => void;

export interface BufferReclaimerOptions {
  /** Buffer bytes allocated since the last look that start a young-generation collection. */
  readonly thresholdBytes?: number;
  /**
   * Buffer bytes still there after that collection, beyond what the last full collection left, that start
   * a full one (Buffers that lived through two young collections, in a socket's queue say, are old).
   */
  readonly majorThresholdBytes?: number;
  /**
   * Growth of the JavaScript heap since the last full collection that starts one. V8 lets the heap grow
   * with the rate of allocation: while the receiver published a 20,000-instance receipt its heap reached
   * 95-230 MB with 35 MB live (a heap snapshot), and the pages stayed with the process afterwards.
   */
  readonly heapThresholdBytes?: number;
  /** How often the buffer bytes are looked at (between data events; see {@link noteBufferBytes}). */
  readonly intervalMs?: number;
  /** The collector; `globalThis.gc` when the process runs with `--expose-gc`. */
  readonly gc?: GcFunction | undefined;
}

export interface BufferReclaimer {
  /** Collections run so far. */
  readonly collections: number;
  /** Counts bytes a loop moved; every `thresholdBytes` of them it looks at once (see noteBufferBytes). */
  note(bytes: number): void;
  stop(): void;
}

export const DEFAULT_RECLAIM_THRESHOLD_BYTES = 16 * 1024 * 1024;
export const DEFAULT_RECLAIM_MAJOR_THRESHOLD_BYTES = 24 * 1024 * 1024;
export const DEFAULT_RECLAIM_HEAP_THRESHOLD_BYTES = 24 * 1024 * 1024;
export const DEFAULT_RECLAIM_INTERVAL_MS = 50;

/**
 * Frees the memory of Buffers that are already garbage while a service streams data (a 1 GB instance comes
 * in as 16,000 socket reads of 64 KiB, and goes out to S3 in 1 MiB chunks). V8 schedules its collections
 * by the JavaScript heap, in which a Buffer is a 100-byte object: the megabytes outside it piled up to
 * 150 MB before a collection ran, and the C allocator then kept much of that as the process's memory. A
 * young-generation collection frees such short-lived Buffers for about a millisecond, so one runs whenever
 * `thresholdBytes` of Buffers were allocated since the last look; a full one when that leaves too many, or
 * when the heap grew by `heapThresholdBytes` since the last full one (20-30 ms for the services' heaps).
 * Without `--expose-gc` (a process started without the service's Node flags) it does nothing.
 */
export function startBufferReclaimer(options: BufferReclaimerOptions = {}): BufferReclaimer {
  const gc = options.gc ?? (globalThis as { gc?: GcFunction }).gc;
  const threshold = options.thresholdBytes ?? DEFAULT_RECLAIM_THRESHOLD_BYTES;
  const majorThreshold = options.majorThresholdBytes ?? DEFAULT_RECLAIM_MAJOR_THRESHOLD_BYTES;
  const heapThreshold = options.heapThresholdBytes ?? DEFAULT_RECLAIM_HEAP_THRESHOLD_BYTES;
  let collections = 0;
  let noted = 0;
  if (gc === undefined) {
    return { collections, note: () => undefined, stop: () => undefined };
  }
  let baseline = memoryUsage().arrayBuffers;
  let majorBaseline = baseline;
  let heapBaseline = memoryUsage().heapUsed;
  const major = (): void => {
    gc({ type: 'major' });
    collections++;
    const after = memoryUsage();
    baseline = after.arrayBuffers;
    majorBaseline = baseline;
    heapBaseline = after.heapUsed;
  };
  const look = (): void => {
    const usage = memoryUsage();
    if (usage.heapUsed < heapBaseline) heapBaseline = usage.heapUsed;
    if (usage.heapUsed - heapBaseline > heapThreshold) {
      major();
      return;
    }
    const now = usage.arrayBuffers;
    if (now < baseline) baseline = now;
    if (now < majorBaseline) majorBaseline = now;
    if (now - baseline < threshold) return;
    gc({ type: 'minor' });
    collections++;
    // What survived is the new baseline, so a large live set never makes it collect on every look.
    baseline = memoryUsage().arrayBuffers;
    if (baseline - majorBaseline > majorThreshold) major();
  };
  const timer = setInterval(look, options.intervalMs ?? DEFAULT_RECLAIM_INTERVAL_MS);
  timer.unref();
  return {
    get collections() {
      return collections;
    },
    note: (bytes) => {
      noted += bytes;
      if (noted < threshold) return;
      noted = 0;
      look();
    },
    stop: () => {
      clearInterval(timer);
    },
  };
}

let processReclaimer: BufferReclaimer | undefined;

/** Starts the process's reclaimer once (runService does, for every service); later calls return it. */
export function startProcessBufferReclaimer(): BufferReclaimer {
  processReclaimer ??= startBufferReclaimer();
  return processReclaimer;
}

/**
 * Tells the process's reclaimer (if started) that a loop moved `bytes` through fresh Buffers. A loop that
 * reads a file and writes a socket without waiting on either may run for a whole 64 MiB part without the
 * event loop reaching the reclaimer's timer: it looks from here instead, every `thresholdBytes`.
 */
export function noteBufferBytes(bytes: number): void {
  processReclaimer?.note(bytes);
}
