/**
 * Byte pair merging: turns the bytes of one pre-token piece into token ids.
 *
 * The rule is tiktoken's: if the whole piece is a token, that is the answer; otherwise start from single bytes
 * and repeatedly merge the adjacent pair whose joined bytes have the lowest rank (the leftmost on ties) until no
 * adjacent pair joins into a token. Every part is a token at every step, so "the rank of the joined bytes" is a
 * function of the two parts' ids; {@link PairRanks} memoizes it in an integer hash table, and the merge loops
 * work on arrays of ids with no strings built after the first sight of a pair.
 *
 * Two loops give identical results: a scan of a small array for short pieces (fastest in practice, quadratic),
 * and a heap over a linked list for long ones, because a 100k-char run of letters is a single piece and the scan
 * would take minutes on it.
 * @module
 */

/** Marks "these two parts do not join into a token"; above every real rank. */
const NONE = 0x7fffffff;

/** Pieces longer than this (in bytes) use the heap; shorter ones use the array scan. */
export const HEAP_THRESHOLD = 128;

/**
 * Memo of (left id, right id) → id of the joined bytes, or {@link NONE}. Open addressing over typed arrays: a
 * lookup hashes two integers and reads memory, where a string-keyed lookup would build and hash a new string.
 * When half full it starts over, which bounds memory (3 MiB) however much text goes through.
 */
class PairRanks {
  private static readonly BITS = 18;
  private readonly left = new Int32Array(1 << PairRanks.BITS).fill(-1);
  private readonly right = new Int32Array(1 << PairRanks.BITS);
  private readonly joined = new Int32Array(1 << PairRanks.BITS);
  private count = 0;

  constructor(
    private readonly ranks: ReadonlyMap<string, number>,
    private readonly bytesById: readonly (string | undefined)[],
  ) {}

  /** Id of the token made of token `a`'s bytes followed by token `b`'s, or `NONE`. */
  get(a: number, b: number): number {
    const mask = (1 << PairRanks.BITS) - 1;
    let slot = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) >>> (32 - PairRanks.BITS);
    for (;;) {
      const key = this.left[slot]!;
      if (key === -1) break;
      if (key === a && this.right[slot] === b) return this.joined[slot]!;
      slot = (slot + 1) & mask;
    }
    const rank = this.ranks.get(this.bytesById[a]! + this.bytesById[b]!) ?? NONE;
    if (this.count >= 1 << (PairRanks.BITS - 1)) {
      this.left.fill(-1);
      this.count = 0;
      return rank; // the slot found above belonged to the old contents; store from the next call on
    }
    this.left[slot] = a;
    this.right[slot] = b;
    this.joined[slot] = rank;
    this.count++;
    return rank;
  }
}

/** Byte pair encoder over one vocabulary. Not re-entrant (shares scratch buffers), which JS never needs. */
export class BytePairEncoder {
  private readonly pairs: PairRanks;
  /** Id of each single byte. */
  private readonly byteIds = new Int32Array(256);
  private parts = new Int32Array(256);
  private pairRanks = new Int32Array(256);

  /**
   * `ranks` maps byte strings (see `utf8.ts`) to ids and must hold all 256 single bytes (`checkVocabulary`
   * ensures it); `bytesById` is its inverse.
   */
  constructor(
    private readonly ranks: ReadonlyMap<string, number>,
    bytesById: readonly (string | undefined)[],
  ) {
    this.pairs = new PairRanks(ranks, bytesById);
    for (let byte = 0; byte < 256; byte++) this.byteIds[byte] = ranks.get(String.fromCharCode(byte))!;
  }

  /** Appends the ids of `bytes` (a byte string) to `out`. */
  encode(bytes: string, out: number[]): void {
    const whole = this.ranks.get(bytes);
    if (whole !== undefined) out.push(whole);
    else if (bytes.length > HEAP_THRESHOLD) this.mergeWithHeap(bytes, out);
    else this.mergeWithScan(bytes, out);
  }

  /** Quadratic scan over an array of part ids; cheapest for the few-byte pieces that make up most text. */
  mergeWithScan(bytes: string, out: number[]): void {
    const n = bytes.length;
    if (this.parts.length < n) {
      this.parts = new Int32Array(n * 2);
      this.pairRanks = new Int32Array(n * 2);
    }
    const parts = this.parts;
    const pairRanks = this.pairRanks;
    const pairs = this.pairs;
    for (let k = 0; k < n; k++) parts[k] = this.byteIds[bytes.charCodeAt(k)]!;
    for (let k = 0; k + 1 < n; k++) pairRanks[k] = pairs.get(parts[k]!, parts[k + 1]!);
    let count = n;
    while (count > 1) {
      let min = NONE;
      let at = -1;
      for (let k = 0; k + 1 < count; k++) {
        if (pairRanks[k]! < min) {
          min = pairRanks[k]!;
          at = k;
        }
      }
      if (at < 0) break;
      // Parts `at` and `at + 1` become the token `min`; drop part `at + 1` and the pair rank after it.
      parts[at] = min;
      parts.copyWithin(at + 1, at + 2, count);
      pairRanks.copyWithin(at + 1, at + 2, count - 1);
      count--;
      if (at + 1 < count) pairRanks[at] = pairs.get(min, parts[at + 1]!);
      if (at > 0) pairRanks[at - 1] = pairs.get(parts[at - 1]!, min);
    }
    for (let k = 0; k < count; k++) out.push(parts[k]!);
  }

  /**
   * Heap merge, O(n log n): parts form a linked list indexed by their first byte's offset; candidate pairs sit
   * in a min-heap keyed by `rank * 2^32 + offset`, so the lowest rank wins and ties go to the leftmost pair, as
   * in the scan. Entries for pairs that changed after they were pushed are recognised and skipped when popped.
   */
  mergeWithHeap(bytes: string, out: number[]): void {
    const n = bytes.length;
    const pairs = this.pairs;
    const next = new Int32Array(n); // offset of the following part, or n
    const prev = new Int32Array(n); // offset of the preceding part, or -1
    const part = new Int32Array(n); // id of the part starting here
    const pairRank = new Int32Array(n); // id of this part joined with the next, or NONE
    const heap = new MinHeap(n);
    const scale = 2 ** 32;
    for (let i = 0; i < n; i++) {
      next[i] = i + 1;
      prev[i] = i - 1;
      part[i] = this.byteIds[bytes.charCodeAt(i)]!;
    }
    const update = (i: number): void => {
      const after = next[i]!;
      const rank = after < n ? pairs.get(part[i]!, part[after]!) : NONE;
      pairRank[i] = rank;
      if (rank !== NONE) heap.push(rank * scale + i);
    };
    for (let i = 0; i < n; i++) update(i);
    while (heap.size > 0) {
      const key = heap.pop();
      const i = key % scale;
      const rank = (key - i) / scale;
      if (pairRank[i] !== rank) continue; // stale: part `i` was absorbed or its pair changed
      const absorbed = next[i]!;
      part[i] = rank;
      next[i] = next[absorbed]!;
      if (next[i]! < n) prev[next[i]!] = i;
      pairRank[absorbed] = NONE;
      update(i);
      if (prev[i]! >= 0) update(prev[i]!);
    }
    for (let i = 0; i < n; i = next[i]!) out.push(part[i]!);
  }
}

/** A binary min-heap of doubles. */
class MinHeap {
  private items: Float64Array;
  size = 0;

  constructor(capacity: number) {
    this.items = new Float64Array(Math.max(16, capacity));
  }

  push(value: number): void {
    if (this.size === this.items.length) {
      const bigger = new Float64Array(this.items.length * 2);
      bigger.set(this.items);
      this.items = bigger;
    }
    const items = this.items;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number {
    const items = this.items;
    const top = items[0]!;
    const last = items[--this.size]!;
    const size = this.size;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && items[child + 1]! < items[child]!) child++;
      if (items[child]! >= last) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
