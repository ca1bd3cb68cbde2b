/**
 * The walkthrough's pictures, viewable in any browser or image viewer: the attention map of one head as a
 * PNG and as an SVG with token labels, and RoPE's rotation of one query vector as an SVG.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpuFloats, scope, tensor } from '@proj/core';
import { LLAMA31_8B, type LlamaConfig, ropeInverseFrequencies } from '@proj/llama3';
import { rope } from '@proj/ops';
import { colourHex, encodePng, heatmap, MASKED } from './png.js';

/** Pixels per cell of the PNG: several pixels per cell, about 600 pixels in all. */
export function cellPixels(S: number): number {
  return Math.max(4, Math.min(48, Math.floor(600 / S)));
}

/** Causal attention: key `c` is hidden from query `r` when it comes later. */
const future = (r: number, c: number) => c > r;

/** The causal attention weights `[S, S]` (rows = queries, columns = keys) as a PNG heat map. */
export function attentionPng(probs: Float32Array, S: number): Uint8Array {
  return encodePng(heatmap(probs, S, S, cellPixels(S), future));
}

/** Escapes text for XML content and attribute values. */
export function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A short, printable label of a token's text. */
function label(text: string): string {
  const shown = JSON.stringify(text).slice(1, -1);
  return shown.length > 14 ? `${shown.slice(0, 13)}…` : shown;
}

function colourBar(x: number, y: number, width: number): string {
  const steps = 20;
  const rects = Array.from(
    { length: steps },
    (_, k) =>
      `<rect x="${x + (k * width) / steps}" y="${y}" width="${width / steps + 0.5}" height="10" fill="${colourHex(k / (steps - 1))}"/>`,
  );
  return `${rects.join('')}<text x="${x}" y="${y + 24}">0</text><text x="${x + width}" y="${y + 24}" text-anchor="end">1</text>`;
}

/**
 * The causal attention weights `[S, S]` as an SVG: one `<rect class="cell">` per (query, key) with its weight in
 * a tooltip, query tokens down the left, key tokens along the top.
 */
export function attentionSvg(probs: Float32Array, tokens: readonly string[], title: string): string {
  const S = tokens.length;
  const cell = Math.max(10, Math.min(32, Math.floor(640 / S)));
  const [left, top] = [130, 120];
  const width = left + S * cell + 70; // room for the last slanted key label
  const height = top + S * cell + 60;
  const parts: string[] = [];
  for (let i = 0; i < S; i++) {
    const y = top + i * cell;
    parts.push(
      `<text x="${left - 6}" y="${y + cell / 2 + 4}" text-anchor="end">${i} ${xml(label(tokens[i]!))}</text>`,
    );
    const x = left + i * cell + cell / 2 + 4;
    parts.push(
      `<text x="${x}" y="${top - 6}" transform="rotate(-60 ${x} ${top - 6})">${i} ${xml(label(tokens[i]!))}</text>`,
    );
    for (let j = 0; j < S; j++) {
      const p = probs[i * S + j]!;
      const fill = future(i, j) ? `rgb(${MASKED.join(',')})` : colourHex(p);
      const value = future(i, j) ? 'masked' : p.toFixed(4);
      parts.push(
        `<rect class="cell" x="${left + j * cell}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff" stroke-width="0.5"><title>query ${i} ${xml(label(tokens[i]!))} -> key ${j} ${xml(label(tokens[j]!))}: ${value}</title></rect>`,
      );
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="18" font-size="14">${xml(title)}</text>
<text x="10" y="34">rows: query positions; columns: key positions; colour: attention weight; light grey: masked (a later key)</text>
${parts.join('\n')}
${colourBar(left, top + S * cell + 16, Math.min(200, S * cell))}
</svg>
`;
}

/** Positions the RoPE picture shows: 0, then powers of two up to `max`. */
export function ropePositions(max: number): number[] {
  const out = [0];
  for (let p = 1; p <= max; p *= 2) out.push(p);
  return out;
}

/** `vector [Dh]` rotated by RoPE to each of `positions` with `invFreq`, using the `rope` op: `[P, Dh]`. */
function rotateTo(vector: Float32Array, positions: number[], invFreq: Float32Array): Float32Array {
  const [P, Dh, half] = [positions.length, vector.length, invFreq.length];
  const cos = new Float32Array(P * half);
  const sin = new Float32Array(P * half);
  positions.forEach((p, r) => {
    for (let j = 0; j < half; j++) {
      cos[r * half + j] = Math.cos(p * invFreq[j]!);
      sin[r * half + j] = Math.sin(p * invFreq[j]!);
    }
  });
  // rope reads row r of the tables for row r of x, so these tables hold just the positions shown.
  return scope(() => {
    const tables = { cos: tensor(cos, [P, half]), sin: tensor(sin, [P, half]) };
    const x = tensor(
      Float32Array.from({ length: P * Dh }, (_, k) => vector[k % Dh]!),
      [P, 1, Dh],
    );
    return cpuFloats(rope(x, tables)).slice();
  });
}

/** `6.28`, `14.6k`, `3.78M`: a wavelength in positions. */
function short(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  return v >= 1e3 ? `${(v / 1e3).toPrecision(3)}k` : v.toPrecision(3);
}

/** The RoPE picture's inputs: the frequencies come from the config. */
export type RopeConfig = Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling' | 'maxPositions'>;

/**
 * RoPE as rotation: for a few pairs of dims `(j, j + Dh/2)` of one query vector, where the pair lands at
 * positions 0, 1, 2, 4, ... (one panel per pair, points coloured early to late). High-frequency pairs
 * (small j) spin around the circle within a few positions; low-frequency ones barely move, and llama3
 * scaling slows them further. Hollow grey points show the other choice of scaling for comparison: none
 * when the model scales, Llama 3.1's factor 8 when it does not.
 */
export function ropeSvg(config: RopeConfig, query: Float32Array, pairCount = 6): string {
  const half = config.headDim / 2;
  const positions = ropePositions(Math.max(config.maxPositions, 131072)); // Llama 3.1's context at least
  const own = ropeInverseFrequencies(config);
  const [otherScaling, otherName] = config.ropeScaling
    ? [null, 'without llama3 scaling']
    : [LLAMA31_8B.ropeScaling, "with Llama 3.1's llama3 scaling (factor 8)"];
  const other = ropeInverseFrequencies({ ...config, ropeScaling: otherScaling });
  const mine = rotateTo(query, positions, own);
  const theirs = rotateTo(query, positions, other);
  const pairs = [
    ...new Set(Array.from({ length: pairCount }, (_, k) => Math.round((k * (half - 1)) / (pairCount - 1)))),
  ];
  const [panelW, panelH, radius, cols] = [250, 270, 90, 3];
  const panels = pairs.map((j, n) => {
    const [ox, oy] = [20 + (n % cols) * panelW, 100 + Math.floor(n / cols) * panelH];
    const [cx, cy] = [ox + panelW / 2, oy + 45 + radius]; // below the three caption lines
    const norm = Math.hypot(query[j]!, query[j + half]!) || 1;
    const at = (data: Float32Array, r: number) => [
      cx + (data[r * config.headDim + j]! / norm) * radius,
      cy - (data[r * config.headDim + j + half]! / norm) * radius,
    ];
    const dots = (data: Float32Array, style: (r: number) => string) =>
      positions.map((_, r) => {
        const [x, y] = at(data, r);
        return `<circle cx="${x!.toFixed(1)}" cy="${y!.toFixed(1)}" ${style(r)}><title>position ${positions[r]}</title></circle>`;
      });
    const [x0, y0] = at(mine, 0);
    const [x1, y1] = at(mine, positions.length - 1);
    const ratio = other[j]! / own[j]!;
    const caption = [
      `pair ${j}: dims ${j} and ${j + half}`,
      `${own[j]!.toPrecision(3)} rad/position, wavelength ${short((2 * Math.PI) / own[j]!)}`,
      Math.abs(ratio - 1) > 1e-6 ? `grey: x${ratio.toPrecision(3)} as fast` : 'grey: the same frequency',
    ];
    return [
      `<g class="pair">`,
      `<circle cx="${cx}" cy="${cy}" r="${radius}" fill="none" stroke="#ccc"/>`,
      ...dots(theirs, () => 'r="5" fill="none" stroke="#999"'),
      ...dots(mine, (r) => `r="3.5" fill="${colourHex(r / (positions.length - 1))}"`),
      `<line x1="${cx}" y1="${cy}" x2="${x0!.toFixed(1)}" y2="${y0!.toFixed(1)}" stroke="black" marker-end="url(#arrow)"/>`,
      `<line x1="${cx}" y1="${cy}" x2="${x1!.toFixed(1)}" y2="${y1!.toFixed(1)}" stroke="#d4a000" stroke-dasharray="3,2" marker-end="url(#arrow)"/>`,
      ...caption.map((t, k) => `<text x="${ox + 10}" y="${oy + k * 14}">${xml(t)}</text>`),
      `</g>`,
    ].join('\n');
  });
  const rows = Math.ceil(pairs.length / cols);
  const scaling = config.ropeScaling
    ? `llama3 scaling factor ${config.ropeScaling.factor}`
    : 'no rope_scaling';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${40 + cols * panelW}" height="${120 + rows * panelH}" font-family="monospace" font-size="11">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="20" font-size="14">${xml(`RoPE: one query vector's dim pairs rotated to positions ${positions[1]}, ${positions[2]}, ${positions[3]}, ... ${positions.at(-1)}`)}</text>
<text x="20" y="38">${xml(`theta ${config.ropeTheta}, head dim ${config.headDim}, ${scaling}, up to ${config.maxPositions} positions. Black arrow: position 0 (no rotation);`)}</text>
<text x="20" y="54">${xml(`dashed arrow: position ${positions.at(-1)}; dots: dark = early, yellow = late. Hollow grey: the same vector ${otherName}.`)}</text>
<text x="20" y="70">${xml('Small j: fast pairs that wrap around within a few tokens (local order). Large j: slow pairs that carry long-range position.')}</text>
${panels.join('\n')}
</svg>
`;
}

/** Paths of the pictures written by {@link writePictures}. */
export interface PicturePaths {
  /** The attention map as PNG. */
  attentionPng: string;
  /** The attention map as SVG with token labels. */
  attentionSvg: string;
  /** The RoPE rotation as SVG. */
  ropeSvg: string;
}

/** Writes the three pictures into `dir` (created if needed) and returns their paths. */
export async function writePictures(
  dir: string,
  attention: { probs: Float32Array; tokens: readonly string[]; layer: number; head: number; kvHead: number },
  rope: { config: RopeConfig; query: Float32Array },
): Promise<PicturePaths> {
  await mkdir(dir, { recursive: true });
  const S = attention.tokens.length;
  const name = `attention-layer${attention.layer}-head${attention.head}`;
  const paths = {
    attentionPng: join(dir, `${name}.png`),
    attentionSvg: join(dir, `${name}.svg`),
    ropeSvg: join(dir, 'rope-rotation.svg'),
  };
  const title = `Attention weights, layer ${attention.layer}, query head ${attention.head} (kv head ${attention.kvHead}), ${S} tokens`;
  await Promise.all([
    writeFile(paths.attentionPng, attentionPng(attention.probs, S)),
    writeFile(paths.attentionSvg, attentionSvg(attention.probs, attention.tokens, title)),
    writeFile(paths.ropeSvg, ropeSvg(rope.config, rope.query)),
  ]);
  return paths;
}
