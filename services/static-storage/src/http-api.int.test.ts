import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@dicomflow/test-helpers';
import {
  dropBucket,
  startStaticStorage,
  type RunningStaticStorage,
} from './testing/static-storage-harness.js';
import { writeRandomTar, writeTar, type TarFixture } from './testing/tar-fixtures.js';

const TOKEN = 'test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let work: string;
let folder: string;
let temp: string;
let api: RunningStaticStorage;
let readOnly: RunningStaticStorage;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'static-api-'));
  folder = join(work, 'folder');
  temp = join(work, 'temp');
  await mkdir(folder);
  await mkdir(temp);
  await writeTar(join(folder, 'from-folder.tar'), { 'x.txt': 'folder content' });
  api = await startStaticStorage(folder, { STATIC_UPLOAD_TOKEN: TOKEN }, { tempDirectory: temp });
  await api.service.syncNow();
  readOnly = await startStaticStorage(join(work, 'empty'), { STATIC_UPLOAD_TOKEN: '' });
});

afterAll(async () => {
  await api.stop();
  await readOnly.stop();
  await dropBucket(api.bucket);
  await dropBucket(readOnly.bucket);
  await rm(work, { recursive: true, force: true });
});

/** Streams a file as the body of a PUT (never read whole into memory). */
function putFile(
  url: string,
  fixture: TarFixture,
  headers: Record<string, string> = auth,
): Promise<Response> {
  return fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/x-tar', 'content-length': String(fixture.size), ...headers },
    body: Readable.toWeb(createReadStream(fixture.path)),
    duplex: 'half',
  });
}

/** A request with the path exactly as written (fetch would normalise `..` and `%2F`). */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const { port } = new URL(api.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function errorOf(response: Response): Promise<string> {
  return ((await response.json()) as { error: string }).error;
}

describe('static-storage: HTTP API', () => {
  it('uploads a tar, lists it and downloads the same bytes with the sha256 S3 holds', async () => {
    const tar = await writeRandomTar(join(work, 'weights.tar'), 6 * 1024 * 1024);
    const created = await putFile(`${api.url}/static/chest-weights-v1`, tar);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({
      name: 'chest-weights-v1',
      size: tar.size,
      sha256: tar.sha256,
      source: 'upload',
      replaced: false,
    });

    const info = await api.storage.stat(api.bucket, 'chest-weights-v1.tar');
    expect(info?.metadata.sha256).toBe(tar.sha256);
    expect(info?.size).toBe(tar.size);

    const listed = (await (await fetch(`${api.url}/static`)).json()) as { items: { name: string }[] };
    expect(listed.items).toEqual([
      {
        name: 'chest-weights-v1',
        size: tar.size,
        sha256: tar.sha256,
        updated: expect.any(String) as string,
        source: 'upload',
      },
      expect.objectContaining({ name: 'from-folder', source: 'directory' }),
    ]);

    const download = await fetch(`${api.url}/static/chest-weights-v1`);
    expect(download.status).toBe(200);
    expect(download.headers.get('x-sha256')).toBe(tar.sha256);
    expect(download.headers.get('content-length')).toBe(String(tar.size));
    expect(Buffer.from(await download.arrayBuffer()).equals(await readFile(tar.path))).toBe(true);

    const head = await fetch(`${api.url}/static/chest-weights-v1`, { method: 'HEAD' });
    expect([head.status, head.headers.get('etag')]).toEqual([200, `"${tar.sha256}"`]);

    // replacing it answers 200, and nothing is left in the temporary folder
    const second = await writeRandomTar(join(work, 'weights2.tar'));
    const replaced = await putFile(`${api.url}/static/chest-weights-v1`, second, {
      ...auth,
      'x-sha256': second.sha256,
    });
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toMatchObject({ sha256: second.sha256, replaced: true });
    expect((await api.storage.stat(api.bucket, 'chest-weights-v1.tar'))?.metadata.sha256).toBe(second.sha256);
    expect(await readdir(temp)).toEqual([]);
  });

  it('refuses uploads and deletes without the right token, and says uploads are off without one', async () => {
    const tar = await writeRandomTar(join(work, 'denied.tar'));
    const missing = await putFile(`${api.url}/static/denied`, tar, {});
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await errorOf(missing)).toMatch(/missing or wrong upload token/);
    const wrong = await putFile(`${api.url}/static/denied`, tar, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    const del = await fetch(`${api.url}/static/chest-weights-v1`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer nope' },
    });
    expect(del.status).toBe(401);
    expect(await api.storage.stat(api.bucket, 'denied.tar')).toBeUndefined();

    const disabled = await fetch(`${readOnly.url}/static/denied`, {
      method: 'PUT',
      headers: auth,
      body: await readFile(tar.path),
    });
    expect(disabled.status).toBe(403);
    expect(await errorOf(disabled)).toMatch(/uploads are disabled: set STATIC_UPLOAD_TOKEN/);
  });

  it('refuses names that are paths or otherwise invalid with a 400 naming the rule', async () => {
    for (const path of [
      '/static/../etc/passwd',
      '/static/..%2F..%2Fetc',
      '/static/a/b',
      '/static/a%2Fb',
      '/static/..',
      '/static/.hidden',
      '/static/a..b',
      `/static/${'x'.repeat(129)}`,
    ]) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const answer = await rawRequest(
          method,
          path,
          method === 'PUT'
            ? { ...auth, 'content-type': 'application/x-tar' }
            : method === 'DELETE'
              ? auth
              : {},
        );
        expect({ path, method, status: answer.status }).toEqual({ path, method, status: 400 });
        expect(JSON.parse(answer.body)).toEqual({
          error: expect.stringMatching(/^invalid static content name: /) as string,
        });
      }
    }
  });

  it('answers 404 for unknown names, 409 for names the folder owns, 400 for bodies that are not what they claim', async () => {
    expect((await fetch(`${api.url}/static/nothing-here`)).status).toBe(404);
    expect(await errorOf(await fetch(`${api.url}/static/nothing-here`))).toBe(
      'no static content named "nothing-here"',
    );
    expect((await fetch(`${api.url}/static/nothing-here`, { method: 'DELETE', headers: auth })).status).toBe(
      404,
    );

    const tar = await writeRandomTar(join(work, 'other.tar'));
    const owned = await putFile(`${api.url}/static/from-folder`, tar);
    expect(owned.status).toBe(409);
    expect(await errorOf(owned)).toMatch(/comes from the static folder/);

    const mismatch = await putFile(`${api.url}/static/checked`, tar, { ...auth, 'x-sha256': '0'.repeat(64) });
    expect(mismatch.status).toBe(400);
    expect(await errorOf(mismatch)).toMatch(/nothing was stored/);
    const notTar = await fetch(`${api.url}/static/checked`, {
      method: 'PUT',
      headers: auth,
      body: 'hello, not a tar'.repeat(100),
    });
    expect(notTar.status).toBe(400);
    expect(await errorOf(notTar)).toMatch(/checked\.tar is not a tar archive/);
    const empty = await fetch(`${api.url}/static/checked`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/x-tar' },
      body: '',
    });
    expect(empty.status).toBe(400);
    expect(await api.storage.stat(api.bucket, 'checked.tar')).toBeUndefined();
  });

  it('keeps nothing of an upload that breaks off', async () => {
    const { port } = new URL(api.url);
    /** Sizes of the upload files in the temporary folder (each upload writes `<folder>/upload.tar`). */
    const tempFileSizes = async (): Promise<number[]> => {
      const sizes: number[] = [];
      for (const folder of await readdir(temp)) {
        const info = await stat(join(temp, folder, 'upload.tar')).catch(() => undefined);
        if (info) sizes.push(info.size);
      }
      return sizes;
    };
    const logsBefore = api.logs.length;
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: 'PUT',
      path: '/static/broken-off',
      headers: { ...auth, 'content-type': 'application/x-tar', 'content-length': String(10 * 1024 * 1024) },
    });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(256 * 1024));
    // The server is writing the body to its temporary file: vanish mid-body.
    await waitFor(
      async () => (await tempFileSizes()).some((size) => size > 0),
      'the upload in a temporary file',
    );
    req.destroy();
    // The handler is done with the upload once the server logged its answer (to nobody): an error.
    const answered = () =>
      api.logs
        .slice(logsBefore)
        .filter(
          (line) => line.method === 'PUT' && line.route === '/static/*' && line.statusCode !== undefined,
        );
    await waitFor(() => answered().length > 0, 'the answer to the broken-off upload');
    expect(answered().map((line) => Number(line.statusCode) >= 400)).toEqual([true]);
    // The temporary file was removed before that answer, and nothing was stored.
    expect(await readdir(temp)).toEqual([]);
    expect(await api.storage.stat(api.bucket, 'broken-off.tar')).toBeUndefined();
  });

  it('refuses an upload over STATIC_MAX_UPLOAD_BYTES with 413, by its length or while it streams, and keeps serving', async () => {
    const limitedTemp = join(work, 'limited-temp');
    await mkdir(limitedTemp);
    const limited = await startStaticStorage(
      join(work, 'limited-folder'),
      { STATIC_UPLOAD_TOKEN: TOKEN, STATIC_MAX_UPLOAD_BYTES: String(64 * 1024) },
      { tempDirectory: limitedTemp },
    );
    try {
      const big = await writeTar(join(work, 'big.tar'), { 'weights.bin': Buffer.alloc(200 * 1024, 7) });
      const byLength = await putFile(`${limited.url}/static/too-big`, big);
      expect(byLength.status).toBe(413);
      expect(await errorOf(byLength)).toMatch(/larger than 65536 bytes \(STATIC_MAX_UPLOAD_BYTES\)/);
      // No Content-Length (chunked): counted while it streams in.
      const streamed = await fetch(`${limited.url}/static/too-big`, {
        method: 'PUT',
        headers: { 'content-type': 'application/x-tar', ...auth },
        body: Readable.toWeb(createReadStream(big.path)),
        duplex: 'half',
      });
      expect(streamed.status).toBe(413);
      expect(await limited.storage.stat(limited.bucket, 'too-big.tar')).toBeUndefined();
      expect(await readdir(limitedTemp)).toEqual([]);
      const small = await writeTar(join(work, 'small.tar'), { 'weights.bin': 'small' });
      expect((await putFile(`${limited.url}/static/small`, small)).status).toBe(201);
    } finally {
      await limited.stop();
      await dropBucket(limited.bucket);
    }
  });

  it('deletes an uploaded tar', async () => {
    const tar = await writeRandomTar(join(work, 'short-lived.tar'));
    expect((await putFile(`${api.url}/static/short-lived`, tar)).status).toBe(201);
    const deleted = await fetch(`${api.url}/static/short-lived`, { method: 'DELETE', headers: auth });
    expect(deleted.status).toBe(204);
    expect(await api.storage.stat(api.bucket, 'short-lived.tar')).toBeUndefined();
    expect((await fetch(`${api.url}/static/short-lived`)).status).toBe(404);
    expect((await stat(tar.path)).size).toBe(tar.size);
  });
});
