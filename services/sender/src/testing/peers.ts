import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import {
  freePort,
  generateCtSeries,
  startDcmtkStorescp,
  startOrthanc,
  type OrthancOptions,
  type RunningOrthanc,
  type RunningProcess,
} from '@dicomflow/test-helpers';
import { sentDigests } from './received.js';
import { SenderWorld } from './sender-harness.js';

/** A dcmtk storescp destination: its port and the folder it writes each received instance to. */
export interface StorescpPeer {
  readonly port: number;
  readonly dir: string;
  readonly peer: RunningProcess;
}

/** What a sender test works with; valid inside its tests (set up per test, the series once per file). */
export interface SenderTestContext {
  /** 12 small CT instances (64x64), explicit VR little endian. */
  readonly series: string[];
  readonly world: SenderWorld;
  /** A folder of the test's own, removed after it. */
  readonly scratch: string;
  /** Starts dcmtk storescp (AE DEST, one file per received instance) on `port` or a free one. */
  storescp(name: string, port?: number): Promise<StorescpPeer>;
  orthanc(opts?: OrthancOptions): Promise<RunningOrthanc>;
  /** Runs `stop` after the test (before the world is cleaned up). */
  defer(stop: () => Promise<void>): void;
}

/**
 * Registers the hooks of a sender test file: a fixture series for the file, and per test a fresh
 * {@link SenderWorld}, scratch folder and peers, all stopped and removed after the test.
 */
export function useSenderTest(): SenderTestContext {
  let fixtures = '';
  let series: string[] = [];
  let world: SenderWorld | undefined;
  let scratch = '';
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    fixtures = await mkdtemp(join(tmpdir(), 'sender-fixtures-'));
    series = await generateCtSeries(join(fixtures, 'ct'), 12, { rows: 64, columns: 64 });
  }, 60_000);
  afterAll(async () => {
    await rm(fixtures, { recursive: true, force: true });
  });
  beforeEach(async () => {
    world = await SenderWorld.create();
    scratch = await mkdtemp(join(tmpdir(), 'sender-peers-'));
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop().catch(() => undefined);
    await world?.cleanup();
    await rm(scratch, { recursive: true, force: true });
  });

  return {
    get series() {
      return series;
    },
    get world() {
      if (!world) throw new Error('no test is running');
      return world;
    },
    get scratch() {
      return scratch;
    },
    async storescp(name, port) {
      const chosen = port ?? (await freePort());
      const dir = join(scratch, name);
      const peer = await startDcmtkStorescp({
        port: chosen,
        outDir: dir,
        aeTitle: 'DEST',
        extraArgs: ['+uf'],
      });
      stops.push(() => peer.stop());
      return { port: chosen, dir, peer };
    },
    defer(stop) {
      stops.push(stop);
    },
    async orthanc(opts = {}) {
      const peer = await startOrthanc(opts);
      stops.push(() => peer.stop());
      return peer;
    },
  };
}

/** Tar members for `files`: `out/series/<file name>`. */
export function members(files: readonly string[]): { name: string; path: string }[] {
  return files.map((path) => ({ name: `out/series/${basename(path)}`, path }));
}

/** SOP Instance UID -> dataset digest of every instance Orthanc stored. */
export async function orthancDigests(pacs: RunningOrthanc, scratch: string): Promise<Map<string, string>> {
  const dir = await mkdtemp(join(scratch, 'orthanc-files-'));
  const paths: string[] = [];
  for (const instance of await pacs.instances()) {
    const path = join(dir, `${instance.id}.dcm`);
    await writeFile(path, await pacs.instanceFile(instance.id));
    paths.push(path);
  }
  return sentDigests(paths);
}
