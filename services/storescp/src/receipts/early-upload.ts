import { basename, join } from 'node:path';
import {
  createTarStream,
  tarMemberName,
  tarMembersSize,
  tarSize,
  type InstanceInfo,
  type TarFileEntry,
} from '@dicomflow/dicom';
import type { Logger } from '@dicomflow/runtime';
import type { PartedUpload, Storage } from '@dicomflow/storage';
import { MemberNames } from './member-names.js';
import { receiptKeys } from './receipt-keys.js';

/** S3's smallest part but the last. */
const MIN_PART_BYTES = 5 * 1024 * 1024;
/** Bytes gathered before a part goes up while a group is open, by default. */
export const EARLY_PART_BYTES = 8 * 1024 * 1024;

/** What uploading receipts while their instances arrive needs. */
export interface EarlyUploadDeps {
  readonly storage: Pick<Storage, 'beginUpload'>;
  readonly bucket: string;
  readonly tarSubdir: readonly string[];
  readonly logger: Logger;
  /** Resolves once the bucket exists. */
  readonly bucketReady: () => Promise<void>;
  /** Asked per file whether to read it synchronously (see createTarStream). */
  readonly readInline?: () => boolean;
  /** Bytes per part (at least 5 MiB; default {@link EARLY_PART_BYTES}). */
  readonly partBytes?: number;
}

/** Bytes of one member inside the tar. */
function memberBytes(entry: TarFileEntry | undefined): number {
  return entry === undefined ? 0 : tarMembersSize([entry]);
}

/**
 * The members of the next part, `entries[from, to)`: from `from` until they make `partBytes` (S3's parts
 * but the last must be that large) or the entries end; `bytes` is their size inside the tar.
 */
function partEnd(
  entries: readonly TarFileEntry[],
  from: number,
  partBytes: number,
): { to: number; bytes: number } {
  let to = from;
  let bytes = 0;
  while (bytes < partBytes && to < entries.length) {
    bytes += memberBytes(entries[to]);
    to++;
  }
  return { to, bytes };
}

/** One open group's upload: its members in filing order, and how many of them went up. */
class GroupUpload {
  readonly entries: TarFileEntry[] = [];
  readonly names = new MemberNames();
  readonly fileNames = new Set<string>();
  /** entries[0, sent) are in parts sent or being sent. */
  sent = 0;
  /** Bytes of entries[sent, ...). */
  pendingBytes = 0;
  sending = false;
  /** Being finished: the rest goes up in finish(), no more parts start here. */
  finishing = false;
  upload: Promise<PartedUpload> | undefined;
  /** The part being sent (settles, never rejects). */
  chain: Promise<void> = Promise.resolve();
  failed = false;

  constructor(readonly dir: string) {}
}

/**
 * Uploads a group's receipt tar while its instances arrive: every instance filed in the group is added
 * to the tar's members, in filing order (the spool index's order, which is the receipt's), and each time
 * 8 MiB of members gathered they go up as the next part of a multipart upload. When the group is
 * published only the members since the last part and the tar's end are left to send, so the receipt is
 * stored moments after the last instance instead of a whole study's upload later.
 *
 * Only an optimisation: whatever goes wrong (an instance received twice into a group, S3 refusing a part,
 * a receipt whose members turn out not to be the ones sent) abandons the early upload, and publishing
 * uploads the whole tar as it always did.
 */
export class EarlyReceiptUploads {
  readonly #deps: EarlyUploadDeps;
  readonly #partBytes: number;
  readonly #groups = new Map<string, GroupUpload>();
  #closed = false;

  constructor(deps: EarlyUploadDeps) {
    this.#deps = deps;
    this.#partBytes = Math.max(MIN_PART_BYTES, deps.partBytes ?? EARLY_PART_BYTES);
  }

  /**
   * An instance was filed as `fileName` in the group folder `groupDir` (called in filing order, at once:
   * see Spool.admit).
   */
  filed(groupDir: string, fileName: string, info: InstanceInfo): void {
    if (this.#closed) return;
    let group = this.#groups.get(groupDir);
    if (!group) {
      group = new GroupUpload(groupDir);
      this.#groups.set(groupDir, group);
    }
    if (group.failed) return;
    if (group.fileNames.has(fileName)) {
      // Its file was replaced: a part may hold the earlier version.
      this.#abandon(group, 'an instance was received again');
      return;
    }
    group.fileNames.add(fileName);
    const entry: TarFileEntry = {
      name: group.names.unique(tarMemberName(this.#deps.tarSubdir, info.elements, info.sopInstanceUid)),
      path: join(groupDir, fileName),
      size: info.size,
    };
    group.entries.push(entry);
    group.pendingBytes += memberBytes(entry);
    this.#sendParts(group);
  }

  /**
   * Completes the receipt tar of `groupDir` whose members are `entries` (as publishing found them): sends
   * what is left and completes the upload. Resolves true when the tar is stored, false when there was no
   * early upload or it had to be abandoned (the caller then uploads the whole tar).
   */
  async finish(groupDir: string, entries: readonly TarFileEntry[]): Promise<boolean> {
    const group = this.#groups.get(groupDir);
    if (!group) return false;
    this.#groups.delete(groupDir);
    group.finishing = true;
    await group.chain;
    if (group.failed || group.upload === undefined) {
      await this.#abort(group);
      return false;
    }
    for (let i = 0; i < group.sent; i++) {
      const sent = group.entries[i];
      const now = entries[i];
      if (sent?.name !== now?.name || sent?.path !== now?.path || sent?.size !== now?.size) {
        this.#deps.logger.debug({ receipt: basename(groupDir), member: i }, 'early receipt upload abandoned');
        await this.#abort(group);
        return false;
      }
    }
    try {
      const upload = await group.upload;
      let from = group.sent;
      // The rest, in parts of at least the part size; the last one closes the archive.
      for (let part = partEnd(entries, from, this.#partBytes); part.to < entries.length;) {
        await upload.uploadPart(this.#tar(entries.slice(from, part.to), false), part.bytes);
        from = part.to;
        part = partEnd(entries, from, this.#partBytes);
      }
      const last = entries.slice(from);
      await upload.uploadPart(this.#tar(last, true), tarSize(last));
      await upload.complete();
      return true;
    } catch (err) {
      this.#deps.logger.warn(
        { receipt: basename(groupDir), err },
        'early receipt upload failed; uploading the whole receipt',
      );
      await this.#abort(group);
      return false;
    }
  }

  /** The group was removed without a receipt (it held nothing): its upload is aborted. */
  async drop(groupDir: string): Promise<void> {
    const group = this.#groups.get(groupDir);
    if (!group) return;
    this.#groups.delete(groupDir);
    group.finishing = true;
    await group.chain;
    await this.#abort(group);
  }

  /** Stops and aborts every early upload; their groups are uploaded whole when published (next start). */
  async close(): Promise<void> {
    this.#closed = true;
    const groups = [...this.#groups.values()];
    this.#groups.clear();
    for (const group of groups) group.finishing = true;
    await Promise.allSettled(
      groups.map(async (group) => {
        await group.chain;
        await this.#abort(group);
      }),
    );
  }

  /** Groups with an early upload (for tests). */
  get openCount(): number {
    return this.#groups.size;
  }

  /** Sends parts while a part's worth of members is waiting and none is being sent. */
  #sendParts(group: GroupUpload): void {
    if (group.sending || group.failed || group.finishing || group.pendingBytes < this.#partBytes) return;
    const from = group.sent;
    const { to, bytes } = partEnd(group.entries, from, this.#partBytes);
    const members = group.entries.slice(from, to);
    group.sent = to;
    group.pendingBytes -= bytes;
    group.sending = true;
    group.chain = (async () => {
      try {
        group.upload ??= this.#begin(group.dir);
        const upload = await group.upload;
        await upload.uploadPart(this.#tar(members, false), bytes);
      } catch (err) {
        this.#abandon(group, err instanceof Error ? err.message : String(err));
      } finally {
        group.sending = false;
      }
      this.#sendParts(group);
    })();
  }

  async #begin(groupDir: string): Promise<PartedUpload> {
    await this.#deps.bucketReady();
    const { tarKey } = receiptKeys(basename(groupDir));
    return this.#deps.storage.beginUpload(this.#deps.bucket, tarKey);
  }

  #tar(members: readonly TarFileEntry[], endOfArchive: boolean) {
    return createTarStream(members, this.#deps.readInline, { endOfArchive });
  }

  #abandon(group: GroupUpload, why: string): void {
    if (group.failed) return;
    group.failed = true;
    this.#deps.logger.debug({ receipt: basename(group.dir), why }, 'early receipt upload abandoned');
  }

  async #abort(group: GroupUpload): Promise<void> {
    if (group.upload === undefined) return;
    const upload = await group.upload.catch(() => undefined);
    await upload?.abort();
  }
}
