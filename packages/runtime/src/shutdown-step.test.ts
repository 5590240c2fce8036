import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { shutdownStep } from './shutdown-step.js';

describe('shutdownStep', () => {
  it('logs a failing step and lets the next one run', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        callback();
      },
    });
    const step = shutdownStep(createLogger({ service: 'test', destination }));
    const ran: string[] = [];
    await step('broker', () => {
      ran.push('broker');
      throw new Error('connection gone');
    });
    await step('http', async () => {
      await Promise.resolve();
      ran.push('http');
    });
    expect(ran).toEqual(['broker', 'http']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ step: 'broker', msg: 'shutdown step failed', level: 'error' });
  });
});
