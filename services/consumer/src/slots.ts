import type { Slot } from './docker/create-options.js';

/** The slots of a consumer: `CPUS` CPU slots, one GPU slot per id in `GPUS`. */
export function slotsOf(config: { readonly CPUS: number; readonly GPUS: readonly string[] }): Slot[] {
  return [
    ...Array.from({ length: config.CPUS }, (_, index): Slot => ({ kind: 'cpu', index })),
    ...config.GPUS.map((gpuId): Slot => ({ kind: 'gpu', gpuId })),
  ];
}
