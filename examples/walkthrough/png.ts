/**
 * A minimal PNG encoder (8-bit RGB, no interlace) and the colour map of the attention pictures. A PNG is the
 * 8-byte signature, then chunks of `length, type, data, CRC-32(type + data)`: IHDR (size and format), IDAT
 * (the zlib-deflated rows, each prefixed with its filter byte, 0 = none) and IEND.
 */
import { deflateSync } from 'node:zlib';

/** The 8 bytes every PNG starts with. */
export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (the zlib / PNG polynomial) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** An RGB image: `pixels` holds `width * height * 3` bytes, rows top to bottom. */
export interface RgbImage {
  /** Pixels per row. */
  width: number;
  /** Rows. */
  height: number;
  /** R, G, B per pixel. */
  pixels: Uint8Array;
}

/** The PNG file of `image`. */
export function encodePng(image: RgbImage): Uint8Array {
  const { width, height, pixels } = image;
  if (pixels.length !== width * height * 3) {
    throw new Error(`encodePng: ${pixels.length} bytes for ${width} x ${height} RGB`);
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits per channel, colour type 2 (RGB), deflate, filter 0, no interlace
  const stride = width * 3;
  const raw = new Uint8Array((stride + 1) * height); // each row: filter byte 0, then its pixels
  for (let y = 0; y < height; y++)
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const parts = [
    PNG_SIGNATURE,
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// A perceptually ordered dark-blue -> teal -> yellow ramp (close to matplotlib's viridis), 5 stops.
const STOPS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** The colour of `t` in [0, 1] (clamped) on the ramp. */
export function colour(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const k = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - k;
  const [a, b] = [STOPS[k]!, STOPS[k + 1]!];
  return [0, 1, 2].map((c) => Math.round(a[c]! + f * (b[c]! - a[c]!))) as [number, number, number];
}

/** `#rrggbb` of `t` on the ramp. */
export function colourHex(t: number): string {
  return `#${colour(t)
    .map((v) => v.toString(16).padStart(2, '0'))
    .join('')}`;
}

/** The colour of cells that are masked out (not merely zero). */
export const MASKED = [230, 230, 230] as const;

/**
 * A heat map of the `rows x cols` matrix `values` (in [0, 1]), each cell `cell` pixels square, with a
 * 1-pixel grey grid when cells are large enough to read one; cells where `masked(r, c)` are light grey.
 */
export function heatmap(
  values: Float32Array,
  rows: number,
  cols: number,
  cell: number,
  masked: (r: number, c: number) => boolean = () => false,
): RgbImage {
  const width = cols * cell;
  const height = rows * cell;
  const pixels = new Uint8Array(width * height * 3);
  const grid = cell >= 6;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, c] = [Math.floor(y / cell), Math.floor(x / cell)];
      const onGrid = grid && (x % cell === 0 || y % cell === 0);
      const rgb = onGrid ? [40, 40, 40] : masked(r, c) ? MASKED : colour(values[r * cols + c]!);
      pixels.set(rgb, (y * width + x) * 3);
    }
  }
  return { width, height, pixels };
}
