/**
 * The lane-interleaved ("packed") layout of a `[N, K]` weight, which the software drivers' `linear` kernel
 * reads at close to their memory bandwidth.
 *
 * Why: that kernel gives each of a workgroup's 8 lanes its own output rows (4 each) and shares x between
 * them, so the lanes read 8 different weight rows at the same K. In row-major order those reads are rows
 * apart (4 KiB and more), and a software driver turns a lane-varying load into a gather that touches 8
 * cache lines: measured on lavapipe, that reads at half the rate of a contiguous read. Packed, the 16-byte
 * words the 8 lanes load together are adjacent, so every gather is one contiguous 128-byte run.
 *
 * The layout, in 16-byte words (8 bf16/f16 or 4 f32 elements; `kc = K * bytes / 16` words per row): rows
 * come in groups of `lanes * rowsPerLane` (the last group padded with zero rows); lane `l` of a group owns
 * its rows `l * rowsPerLane + j`, `j < rowsPerLane`; and word `c` of row `(g, l, j)` is stored at
 * `((g * kc + c) * rowsPerLane + j) * lanes + l`. A group's words are contiguous and start where its first
 * row starts in row-major order, so a range of groups binds like a range of rows.
 * @module
 */

/** A packed weight's layout and logical size (see the module comment). */
export interface RowPacking {
  /** Lanes per group (the kernel's workgroup size). */
  readonly lanes: number;
  /** Consecutive rows each lane owns. */
  readonly rowsPerLane: number;
  /** Rows of the logical `[N, K]` tensor (N). */
  readonly rows: number;
  /** Bytes per logical row (a multiple of 16). */
  readonly rowBytes: number;
}

/** Rows per group. */
export function groupRows(p: RowPacking): number {
  return p.lanes * p.rowsPerLane;
}

/** Bytes the packed tensor occupies: whole groups. */
export function packedBytes(p: RowPacking): number {
  return Math.ceil(p.rows / groupRows(p)) * groupRows(p) * p.rowBytes;
}

/**
 * The word index, in the packed layout, of word `c` of row `row` (row-major word `row * kc + c`). The same
 * arithmetic is rendered in WGSL by {@link packedWordWgsl}.
 */
export function packedWord(p: RowPacking, row: number, c: number): number {
  const kc = p.rowBytes / 16;
  const g = Math.floor(row / groupRows(p));
  const r = row % groupRows(p);
  return ((g * kc + c) * p.rowsPerLane + (r % p.rowsPerLane)) * p.lanes + Math.floor(r / p.rowsPerLane);
}

/**
 * WGSL `fn packed_word(row: u32, c: u32, kc: u32) -> u32`: {@link packedWord} for the given lanes and rows
 * per lane, rows counted from the start of the binding (which starts at a group).
 */
export function packedWordWgsl(p: Pick<RowPacking, 'lanes' | 'rowsPerLane'>): string {
  const G = p.lanes * p.rowsPerLane;
  return `fn packed_word(row: u32, c: u32, kc: u32) -> u32 {
  let r = row % ${G}u;
  return (((row / ${G}u) * kc + c) * ${p.rowsPerLane}u + r % ${p.rowsPerLane}u) * ${p.lanes}u + r / ${p.rowsPerLane}u;
}`;
}

/**
 * Packs whole row groups on the host, fast: `rowMajor` holds rows `[g0 * G, g0 * G + n)` of the weight
 * (`g0` a whole group; `n` whole groups, or up to the last row), and the result is those groups' packed
 * bytes (padding rows zero), which sit at the same byte offset in the packed weight as the rows do in the
 * row-major one. About 3-5 GB/s in V8: faster than a packing kernel on a software driver, and it saves that
 * driver a copy. `into` receives the result instead of a new array when given (it must hold the packed
 * size and be 4-byte aligned: a loader passes mapped staging memory). {@link packRowsReference} is the
 * definition it is tested against.
 */
export function packGroups(
  rowMajor: Uint8Array,
  p: Pick<RowPacking, 'lanes' | 'rowsPerLane' | 'rowBytes'>,
  into?: Uint8Array,
): Uint8Array {
  const rows = rowMajor.byteLength / p.rowBytes;
  const G = p.lanes * p.rowsPerLane;
  const size = Math.ceil(rows / G) * G * p.rowBytes;
  if (into && (into.byteLength < size || into.byteOffset % 4 !== 0)) {
    throw new RangeError(`packGroups: ${size} packed bytes do not fit the ${into.byteLength}-byte target`);
  }
  const out = into ? into.subarray(0, size) : new Uint8Array(size);
  if (rows % G !== 0) out.fill(0, rows * p.rowBytes); // the padding rows of the last group
  moveWords(words(rowMajor), words(out), p, rows, true);
  return out;
}

/**
 * The inverse of {@link packGroups}: the first `rows` rows of packed whole groups, row-major (what reading
 * a packed weight back returns). {@link unpackRowsReference} is the definition it is tested against.
 */
export function unpackGroups(packed: Uint8Array, p: RowPacking): Uint8Array {
  const out = new Uint8Array(p.rows * p.rowBytes);
  moveWords(words(out), words(packed), p, p.rows, false);
  return out;
}

/** A u32 view of `bytes` (copied first when they are not 4-byte aligned). */
function words(bytes: Uint8Array): Uint32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 2);
}

/** Moves the 16-byte words of `rows` rows between row-major and packed order (`pack`: into packed). */
function moveWords(
  rowMajor: Uint32Array,
  packed: Uint32Array,
  p: Pick<RowPacking, 'lanes' | 'rowsPerLane' | 'rowBytes'>,
  rows: number,
  pack: boolean,
): void {
  const { lanes, rowsPerLane } = p;
  const G = lanes * rowsPerLane;
  const kc = p.rowBytes / 16;
  const step = 4 * G; // u32 between a row's consecutive words in the packed order
  for (let g = 0; g * G < rows; g++) {
    const base = g * G * kc * 4;
    const last = Math.min(G, rows - g * G);
    for (let r = 0; r < last; r++) {
      let s = base + r * kc * 4;
      let d = base + ((r % rowsPerLane) * lanes + ((r / rowsPerLane) | 0)) * 4;
      if (pack) {
        for (let c = 0; c < kc; c++, s += 4, d += step) {
          packed[d] = rowMajor[s]!;
          packed[d + 1] = rowMajor[s + 1]!;
          packed[d + 2] = rowMajor[s + 2]!;
          packed[d + 3] = rowMajor[s + 3]!;
        }
      } else {
        for (let c = 0; c < kc; c++, s += 4, d += step) {
          rowMajor[s] = packed[d]!;
          rowMajor[s + 1] = packed[d + 1]!;
          rowMajor[s + 2] = packed[d + 2]!;
          rowMajor[s + 3] = packed[d + 3]!;
        }
      }
    }
  }
}

/** The CPU reference of packing: row-major bytes (`rows * rowBytes`) -> packed bytes (zero padding rows). */
export function packRowsReference(rowMajor: Uint8Array, p: RowPacking): Uint8Array {
  const out = new Uint8Array(packedBytes(p));
  const kc = p.rowBytes / 16;
  for (let row = 0; row < p.rows; row++) {
    for (let c = 0; c < kc; c++) {
      const from = (row * kc + c) * 16;
      out.set(rowMajor.subarray(from, from + 16), packedWord(p, row, c) * 16);
    }
  }
  return out;
}

/** The CPU reference of unpacking: packed bytes -> row-major bytes (`rows * rowBytes`). */
export function unpackRowsReference(packed: Uint8Array, p: RowPacking): Uint8Array {
  const out = new Uint8Array(p.rows * p.rowBytes);
  const kc = p.rowBytes / 16;
  for (let row = 0; row < p.rows; row++) {
    for (let c = 0; c < kc; c++) {
      const from = packedWord(p, row, c) * 16;
      out.set(packed.subarray(from, from + 16), (row * kc + c) * 16);
    }
  }
  return out;
}
