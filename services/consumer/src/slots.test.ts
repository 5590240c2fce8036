import { describe, expect, it } from 'vitest';
import { slotRoutingKey } from './consumers/job-slot.js';
import { slotsOf } from './slots.js';

describe('slotsOf', () => {
  it('makes CPUS CPU slots and one slot per GPU id', () => {
    const slots = slotsOf({ CPUS: 2, GPUS: ['0', 'GPU-7f'] });
    expect(slots).toEqual([
      { kind: 'cpu', index: 0 },
      { kind: 'cpu', index: 1 },
      { kind: 'gpu', gpuId: '0' },
      { kind: 'gpu', gpuId: 'GPU-7f' },
    ]);
    expect(slots.map(slotRoutingKey)).toEqual(['job.cpu', 'job.cpu', 'job.gpu', 'job.gpu']);
  });

  it('makes no GPU slot without GPU ids, so job.gpu is never consumed', () => {
    expect(slotsOf({ CPUS: 1, GPUS: [] }).map(slotRoutingKey)).toEqual(['job.cpu']);
  });
});
