import { randomUUID } from 'node:crypto';
import { appendFileSync, createReadStream, renameSync } from 'node:fs';
import { access, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspectPart10File, type InstanceInfo, type ReadElementsOptions } from '@dicomflow/dicom';
import { DEFAULT_MAX_INDEX_LINE_BYTES, readLines } from '@dicomflow/messages';

/*
 * Spool layout (one filesystem, so renames are atomic):
 *   incoming/<uuid>.part            an instance being received; never answered with success
 *   groups/<receiptId>/group.json   who sent the group and how it is grouped (written before any instance)
 *   groups/<receiptId>/<uid>.dcm    instances answered with success
 *   groups/<receiptId>/index.jsonl  what each instance is (parsed once, when received), one line per file
 *   groups/<receiptId>/sealed       no more instances join; the group is ready to publish
 * A file's presence under groups/ is the promise made to the sender, so nothing there is ever dropped.
 */

export type Grouping = 'association' | 'study' | 'series';

export interface GroupManifest {
  readonly receiptId: string;
  readonly grouping: Grouping;
  /** Association id, StudyInstanceUID or SeriesInstanceUID, by grouping. */
  readonly key: string;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly callingHost: string;
  readonly createdAt: string;
}

export interface RecoveredGroup {
  readonly manifest: GroupManifest;
  readonly dir: string;
  readonly sealed: boolean;
}

const SEALED = 'sealed';
const MANIFEST = 'group.json';
const INDEX = 'index.jsonl';

/** A filed instance: where it is and what it is. */
export interface SpooledInstance {
  readonly path: string;
  readonly info: InstanceInfo;
}

interface IndexLine {
  readonly file: string;
  readonly info: InstanceInfo;
}

/** The lines of a group's spool index (none when it does not exist), pulled one at a time with their numbers. */
async function* spoolIndexLines(
  path: string,
): AsyncGenerator<{ number: number; line: Buffer }, void, undefined> {
  try {
    await access(path);
  } catch {
    return;
  }
  let number = 0;
  // admit() never writes a longer line; a longer one is a damaged file, and fails the group's publish.
  for await (const line of readLines(createReadStream(path), DEFAULT_MAX_INDEX_LINE_BYTES + 1)) {
    number += 1;
    if (line.length > 0) yield { number, line };
  }
}

/** The lines of a group's spool index that parse, with their line numbers. */
async function* indexLines(
  path: string,
): AsyncGenerator<{ number: number; entry: IndexLine }, void, undefined> {
  for await (const { number, line } of spoolIndexLines(path)) {
    try {
      yield { number, entry: JSON.parse(line.toString('utf8')) as IndexLine };
    } catch {
      // a line cut short by a crash: its file is parsed again (it is not covered by the index)
    }
  }
}

const LINE_START = Buffer.from('{"file":"');
const LINE_END = Buffer.from('}}');
const QUOTE = 0x22;

/**
 * The file name of each line of a group's spool index, with its line number, read from the line's start
 * (lines are written as `{"file":"<name>","info":...}` and names hold no quote); a line that does not end as
 * a whole line does is left out.
 */
async function* indexFileNames(
  path: string,
): AsyncGenerator<{ number: number; file: string }, void, undefined> {
  for await (const { number, line } of spoolIndexLines(path)) {
    if (!line.subarray(0, LINE_START.length).equals(LINE_START)) continue;
    if (!line.subarray(line.length - LINE_END.length).equals(LINE_END)) continue;
    const end = line.indexOf(QUOTE, LINE_START.length);
    if (end > LINE_START.length) yield { number, file: line.toString('utf8', LINE_START.length, end) };
  }
}

/** An instance whose elements would take more than an index line may hold (DEFAULT_MAX_INDEX_LINE_BYTES). */
export class IndexLineTooLargeError extends Error {
  override readonly name = 'IndexLineTooLargeError';
  constructor(readonly bytes: number) {
    super(`its elements take ${bytes} bytes in the receipt index, more than ${DEFAULT_MAX_INDEX_LINE_BYTES}`);
  }
}

/** Told of each instance filed in a group (see Spool.onFiled). */
export type FiledListener = (groupDir: string, fileName: string, info: InstanceInfo) => void;

/** The receiver's on-disk spool. */
export class Spool {
  readonly incomingDir: string;
  readonly groupsDir: string;
  /**
   * Every path under incoming/ and groups/ this process uses: instance files handed out and not yet filed
   * or discarded, group folders (also being created) not yet removed. Whatever else is there is a
   * leftover, which the janitor may remove once it is old enough.
   */
  readonly #inUse = new Set<string>();
  #recovered = false;
  #filedListener: FiledListener | undefined;

  /**
   * `readOptions`: how instances' elements are read for the index (the bound on each value); the
   * receiver reads what it receives, and what it finds again on restart, the same way.
   */
  constructor(
    readonly root: string,
    private readonly fsync: boolean,
    readonly readOptions: ReadElementsOptions = {},
  ) {
    this.incomingDir = join(root, 'incoming');
    this.groupsDir = join(root, 'groups');
  }

  async init(): Promise<void> {
    await mkdir(this.incomingDir, { recursive: true });
    await mkdir(this.groupsDir, { recursive: true });
  }

  /**
   * Tells `listener` of every instance filed from now on, synchronously and in the order of the groups'
   * indexes (the early receipt upload relies on that order). It must not throw.
   */
  onFiled(listener: FiledListener): void {
    this.#filedListener = listener;
  }

  /** A fresh path for an instance being received; in use until it is admitted or discarded. */
  newIncomingPath(): string {
    const path = join(this.incomingDir, `${randomUUID()}.part`);
    this.#inUse.add(path);
    return path;
  }

  /** Whether `path` (directly under incoming/ or groups/) belongs to an association or a group of this process. */
  inUse(path: string): boolean {
    return this.#inUse.has(path);
  }

  /** True once {@link recover} took over what a previous process left: only then is a leftover known as such. */
  get recovered(): boolean {
    return this.#recovered;
  }

  groupDir(receiptId: string): string {
    return join(this.groupsDir, receiptId);
  }

  /** Creates a group folder with its manifest, atomically (a crash leaves either nothing or the whole). */
  async createGroup(manifest: GroupManifest): Promise<string> {
    const dir = this.groupDir(manifest.receiptId);
    const staging = `${dir}.new`;
    this.#inUse.add(staging);
    this.#inUse.add(dir);
    try {
      await mkdir(staging, { recursive: true });
      await writeFile(join(staging, MANIFEST), JSON.stringify(manifest, null, 2));
      await rename(staging, dir);
    } catch (err) {
      this.#inUse.delete(dir);
      throw err;
    } finally {
      this.#inUse.delete(staging);
    }
    await this.syncDir(this.groupsDir);
    return dir;
  }

  /**
   * Moves a received instance into its group and notes what it is; after this resolves the instance
   * survives a crash. Synchronous renames and appends: they hit only metadata and the page cache, and a
   * thread-pool round trip each would add milliseconds to every C-STORE response.
   */
  async admit(incomingPath: string, groupDir: string, fileName: string, info: InstanceInfo): Promise<void> {
    const line = `${JSON.stringify({ file: fileName, info } satisfies IndexLine)}\n`;
    // Refused before it is filed: an index line no reader would take must not fail the study later.
    if (line.length > DEFAULT_MAX_INDEX_LINE_BYTES) throw new IndexLineTooLargeError(line.length);
    renameSync(incomingPath, join(groupDir, fileName));
    this.#inUse.delete(incomingPath);
    // The file is the promise; the index line only saves reading it again, so it comes second.
    appendFileSync(join(groupDir, INDEX), line);
    // Told before the first await: listeners see instances in the index's order.
    this.#filedListener?.(groupDir, fileName, info);
    await this.syncDir(groupDir);
  }

  async seal(groupDir: string): Promise<void> {
    await writeFile(join(groupDir, SEALED), '');
    await this.syncDir(groupDir);
  }

  /**
   * The instances of a group, streamed in a stable order: as they were admitted (the spool index, read
   * line by line; an instance received twice under one name counts once, as its last version), then any
   * file the index does not cover (a crash between the rename and the index line), parsed again, by name.
   * Only file names and line numbers are held, never the elements of the whole group.
   */
  async *instances(groupDir: string): AsyncGenerator<SpooledInstance, void, undefined> {
    const files = new Set((await readdir(groupDir)).filter((n) => n.endsWith('.dcm')));
    const indexPath = join(groupDir, INDEX);
    // First pass: which line is each file's last. Only the file name is needed, so a line is not parsed
    // (a 20,000-instance group's index is 40 MB of JSON; the second pass parses it once).
    const lastLine = new Map<string, number>();
    for await (const { number, file } of indexFileNames(indexPath)) lastLine.set(file, number);
    const covered = new Set<string>();
    for await (const { number, entry } of indexLines(indexPath)) {
      if (lastLine.get(entry.file) !== number || !files.has(entry.file)) continue;
      covered.add(entry.file);
      yield { path: join(groupDir, entry.file), info: entry.info };
    }
    // A file whose last line does not parse (cut short by a crash) is read again, like one with no line.
    const unindexed = [...files].filter((name) => !covered.has(name)).sort();
    for (const name of unindexed) {
      const path = join(groupDir, name);
      yield { path, info: await inspectPart10File(path, this.readOptions) };
    }
  }

  /** Removes a group once published (or empty); if that fails, what is left is a leftover. */
  async removeGroup(groupDir: string): Promise<void> {
    try {
      await rm(groupDir, { recursive: true, force: true });
    } finally {
      this.#inUse.delete(groupDir);
    }
  }

  /** Removes an instance file that is not filed (refused, cut short, or a spare never used). */
  async discard(path: string): Promise<void> {
    try {
      await rm(path, { force: true });
    } finally {
      this.#inUse.delete(path);
    }
  }

  /**
   * What a previous process left: partial instances are deleted (their senders never got a success),
   * half-created group folders are deleted (they hold no instance), every other group is returned.
   */
  async recover(): Promise<RecoveredGroup[]> {
    await this.init();
    for (const name of await readdir(this.incomingDir))
      await rm(join(this.incomingDir, name), { force: true });
    const groups: RecoveredGroup[] = [];
    for (const name of await readdir(this.groupsDir)) {
      const dir = join(this.groupsDir, name);
      if (name.endsWith('.new')) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      const manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as GroupManifest;
      const entries = await readdir(dir);
      this.#inUse.add(dir);
      groups.push({ manifest, dir, sealed: entries.includes(SEALED) });
    }
    this.#recovered = true;
    return groups;
  }

  private async syncDir(dir: string): Promise<void> {
    if (!this.fsync) return;
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
