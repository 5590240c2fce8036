import { appendFile, copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspectPart10File } from '@dicomflow/dicom';
import { generateCtSeries } from '@dicomflow/test-helpers';
import { Spool } from './spool.js';

describe('Spool.instances', () => {
  let root: string;
  let spool: Spool;
  let group: string;
  let sources: string[];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'dicomflow-spool-'));
    spool = new Spool(join(root, 'spool'), false);
    await spool.init();
    sources = await generateCtSeries(join(root, 'fixtures'), 3, { rows: 8, columns: 8 });
    group = await spool.createGroup({
      receiptId: 'receipt-1',
      grouping: 'association',
      key: 'a',
      callingAeTitle: 'SCU',
      calledAeTitle: 'SCP',
      callingHost: '127.0.0.1',
      createdAt: new Date(0).toISOString(),
    });
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function admit(source: string, fileName: string): Promise<string> {
    const incoming = spool.newIncomingPath();
    await copyFile(source, incoming);
    const info = await inspectPart10File(incoming);
    await spool.admit(incoming, group, fileName, info);
    return info.sopInstanceUid;
  }

  async function listed(): Promise<Array<{ file: string; uid: string }>> {
    const out: Array<{ file: string; uid: string }> = [];
    for await (const { path, info } of spool.instances(group))
      out.push({ file: path.slice(group.length + 1), uid: info.sopInstanceUid });
    return out;
  }

  it('lists every admitted instance once, in the order admitted, a repeated name as its last version', async () => {
    const [a, b, c] = sources as [string, string, string];
    const first = await admit(a, '1.dcm');
    await admit(b, '2.dcm');
    const again = await admit(c, '2.dcm');
    expect(await listed()).toEqual([
      { file: '1.dcm', uid: first },
      { file: '2.dcm', uid: again },
    ]);
  });

  it('reads an instance again when its index line was cut short by a crash, and one with no line', async () => {
    const [a, b, c] = sources as [string, string, string];
    const first = await admit(a, '1.dcm');
    const second = await admit(b, '2.dcm');
    const index = join(group, 'index.jsonl');
    const text = await readFile(index, 'utf8');
    // The second line loses its last bytes (it still starts like a whole line).
    await truncate(index, text.length - 3);
    // A third instance was renamed into the group, and the crash came before its line.
    await copyFile(c, join(group, '3.dcm'));
    const third = (await inspectPart10File(c)).sopInstanceUid;
    expect(await listed()).toEqual([
      { file: '1.dcm', uid: first },
      { file: '2.dcm', uid: second },
      { file: '3.dcm', uid: third },
    ]);
  });

  it('skips index lines that are not JSON and lines whose file is gone', async () => {
    const [a, b] = sources as [string, string];
    const first = await admit(a, '1.dcm');
    await admit(b, '2.dcm');
    await rm(join(group, '2.dcm'));
    await appendFile(join(group, 'index.jsonl'), 'not json at all\n{"file":"9.dcm","info":{}}\n');
    await writeFile(join(group, 'notes.txt'), 'not an instance');
    expect(await listed()).toEqual([{ file: '1.dcm', uid: first }]);
  });
});
