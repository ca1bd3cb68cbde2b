/**
 * A bounded memo of piece text → token ids.
 *
 * Natural text repeats its pieces (" the", " of", ","), so most pieces are looked up, not merged. The cache
 * keeps two generations: when the newer one fills up, the older is dropped and the newer becomes the older,
 * and a hit in the older generation is copied forward. That keeps memory bounded without LRU bookkeeping and
 * keeps the pieces in current use.
 * @module
 */

/** Ids of one piece: a number for the common single-token piece (no array to allocate), else an array. */
export type PieceIds = number | readonly number[];

/** Two-generation bounded map from piece text to its ids. */
export class PieceCache {
  private recent = new Map<string, PieceIds>();
  private older = new Map<string, PieceIds>();

  /** `capacity` bounds each generation, so at most twice that many pieces are held. */
  constructor(private readonly capacity: number) {}

  /** The cached ids of `piece`, or `undefined`. */
  get(piece: string): PieceIds | undefined {
    const ids = this.recent.get(piece);
    if (ids !== undefined) return ids;
    const old = this.older.get(piece);
    if (old !== undefined) this.set(piece, old);
    return old;
  }

  /** Remembers the ids of `piece`. */
  set(piece: string, ids: PieceIds): void {
    if (this.recent.size >= this.capacity) {
      this.older = this.recent;
      this.recent = new Map();
    }
    this.recent.set(piece, ids);
  }

  /** Forgets everything, for example to measure cold-start speed. */
  clear(): void {
    this.recent = new Map();
    this.older = new Map();
  }
}
