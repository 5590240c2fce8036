/** Pieces shorter than this are copied together; longer ones are passed on as they are (no copy). */
export const SMALL_PIECE = 4 * 1024;
/** Size of the buffers small pieces are copied into. */
const STAGING_SIZE = 64 * 1024;

/**
 * Gathers byte pieces for one writer, copying runs of small pieces into shared 64 KiB staging buffers so
 * that a peer sending a dataset as a million 1-byte PDVs costs a few writes and objects instead of a
 * million (each write, queue entry and kept Buffer has a fixed cost far above one byte's). Pieces of at
 * least {@link SMALL_PIECE} bytes keep their zero-copy path. The order of bytes is kept.
 *
 * A staging buffer is only ever appended to: a slice handed out by {@link drain} stays valid for as long
 * as its holder keeps it.
 */
export class PieceCoalescer {
  private out: Buffer[] = [];
  private staging: Buffer | undefined;
  /** Start of the staged bytes not yet handed out. */
  private start = 0;
  /** End of the staged bytes. */
  private used = 0;
  private bytes = 0;

  /** Bytes added and not yet drained. */
  get pendingBytes(): number {
    return this.bytes;
  }

  add(piece: Buffer): void {
    if (piece.length === 0) return;
    this.bytes += piece.length;
    if (piece.length >= SMALL_PIECE) {
      this.seal();
      this.out.push(piece);
      return;
    }
    let staging = this.staging;
    if (!staging || this.used + piece.length > staging.length) {
      this.seal();
      staging = Buffer.allocUnsafe(STAGING_SIZE);
      this.staging = staging;
      this.start = 0;
      this.used = 0;
    }
    piece.copy(staging, this.used);
    this.used += piece.length;
  }

  /** Everything added since the last drain, in order, as few pieces as the sizes allow. */
  drain(): Buffer[] {
    this.seal();
    const out = this.out;
    this.out = [];
    this.bytes = 0;
    return out;
  }

  /** Drops what was added and not drained. */
  clear(): void {
    this.out = [];
    this.staging = undefined;
    this.start = 0;
    this.used = 0;
    this.bytes = 0;
  }

  private seal(): void {
    if (this.staging && this.used > this.start) {
      this.out.push(this.staging.subarray(this.start, this.used));
      this.start = this.used;
    }
  }
}
