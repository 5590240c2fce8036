import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatDeliveredLine, readDeliveredLines, validateMessage } from './index.js';

async function readAll(text: string): Promise<unknown[]> {
  const lines: unknown[] = [];
  for await (const line of readDeliveredLines(Readable.from([Buffer.from(text)]))) lines.push(line);
  return lines;
}

describe('delivered manifest', () => {
  it('reads back what it formats, line by line', async () => {
    const text =
      formatDeliveredLine({ sopInstanceUid: '1.2.3.4', target: 'PACS@pacs:104' }) +
      formatDeliveredLine({ sopInstanceUid: '1.2.3.5', target: 'https://web.example/dicom-web' });
    expect(await readAll(text)).toEqual([
      { sopInstanceUid: '1.2.3.4', target: 'PACS@pacs:104' },
      { sopInstanceUid: '1.2.3.5', target: 'https://web.example/dicom-web' },
    ]);
  });

  it('names the line that is not JSON or not valid', async () => {
    await expect(readAll('{"sopInstanceUid":"1.2","target":"A@h:1"}\nnope\n')).rejects.toThrow(
      'delivered manifest line 2 is not JSON',
    );
    await expect(readAll('{"sopInstanceUid":"x y","target":"A@h:1"}\n')).rejects.toThrow(
      /delivered manifest line 1 is not valid: \/sopInstanceUid/,
    );
  });

  it('send.finished may name the manifest; job.started may carry the image id and digests', () => {
    expect(
      validateMessage('job.started', {
        runId: '0b7f4d3e-2c1a-4f5e-8d9c-7b6a5f4e3d2c',
        step: 0,
        startedAt: '2026-01-01T00:00:00Z',
        image: 'seg:1',
        imageId: `sha256:${'a'.repeat(64)}`,
        repoDigests: [`registry.example/seg@sha256:${'b'.repeat(64)}`],
      }).ok,
    ).toBe(true);
  });
});
