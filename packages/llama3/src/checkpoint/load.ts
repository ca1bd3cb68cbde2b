/**
 * Loading a checkpoint onto a device: validate every tensor against the config first (names, shapes,
 * dtypes; nothing is read before that), then stream the tensors to the device one at a time, so peak host
 * memory is about the largest tensor, not the model. bf16 and f16 weights stay in their own bytes.
 * @module
 */
import { cpu, type Device, DTYPE_BYTES, type DType, formatShape } from '@proj/core';
import { writable, writeRows } from '@proj/ops';
import type { LlamaConfig } from '../config.js';
import { Llama, type LlamaOptions } from '../model.js';
import {
  disposeWeights,
  expectedHfTensors,
  type LlamaWeights,
  metaName,
  WeightAssembler,
  type WeightSlot,
} from '../weights.js';
import type { TensorSource } from './source.js';

/** Progress of a load, reported after each tensor. */
export interface LoadProgress {
  /** The tensor just loaded. */
  tensor: string;
  /** Tensors loaded so far, and in all. */
  index: number;
  /** Number of tensors to load. */
  count: number;
  /** Bytes loaded so far. */
  loadedBytes: number;
  /** Bytes to load in all. */
  totalBytes: number;
  /**
   * Where the time went so far, in milliseconds: waiting for the file (a chunk not yet read when it was
   * needed), waiting for the device (no staging buffer free), and copying or packing chunks into staging
   * memory. What is left of the wall time is planning, the tensors read whole, and the caller.
   */
  time: LoadTime;
}

/** See {@link LoadProgress.time}. */
export interface LoadTime {
  /** Waiting for reads. */
  readWaitMs: number;
  /** Waiting for a free staging buffer (the device taking in earlier chunks). */
  deviceWaitMs: number;
  /** Copying or packing chunks into staging memory. */
  fillMs: number;
}

/**
 * How a checkpoint names and orders its tensors: `'hf'` (Hugging Face names, RoPE in half-split order) or
 * `'meta'` (Meta's names, RoPE in interleaved pairs, which the loader reorders).
 */
export type CheckpointFormat = 'hf' | 'meta';

/** Options of {@link loadLlama} and {@link loadLlamaFrom}. */
export interface LoadOptions {
  /** Where the weights go (default: the CPU device). */
  device?: Device;
  /** Called after each tensor. */
  onProgress?: (progress: LoadProgress) => void;
  /** Called for tensors the model does not use (default: `console.warn`); with `strict`, they are errors. */
  onWarning?: (message: string) => void;
  /** Treat unexpected tensors as errors. */
  strict?: boolean;
  /** Positions to prepare RoPE tables and caches for (default min(model maximum, 8192)). */
  contextLength?: number;
  /** Bytes per read when streaming a tensor to the device (default 16 MiB; rounded down to whole rows). */
  chunkBytes?: number;
  /**
   * A preset (or literal config) the checkpoint must match in every dim; the result is then typed by it,
   * so the logits' vocabulary size is known to the compiler. A mismatch is an error naming the field.
   */
  preset?: LlamaConfig;
}

/** Tensors that checkpoints may carry and the model recomputes: ignored without a warning. */
const KNOWN_UNUSED = /(^|\.)rotary_emb\.inv_freq$|^rope\.freqs$/;

/** One tensor of a checked checkpoint: where it is read from and where it goes. */
export interface PlannedTensor {
  /** Its name in the checkpoint (HF or Meta naming). */
  source: string;
  /** The parameter it becomes, with the shape the config implies. */
  slot: WeightSlot;
  /** Its dtype in the file (kept on the device). */
  dtype: DType;
  /** Its size in bytes. */
  byteLength: number;
}

/** Checks the whole checkpoint against the config before any tensor data is read. */
export function planLoad(
  config: LlamaConfig,
  format: CheckpointFormat,
  source: TensorSource,
  options: LoadOptions = {},
): PlannedTensor[] {
  const expected = expectedHfTensors(config);
  const present = new Set(source.names());
  if (format === 'meta' && !expected.has('lm_head.weight') && present.has('output.weight')) {
    // Meta ships Llama 3.2's tied head as a separate copy; load it as the output head.
    expected.set('lm_head.weight', {
      layer: -1,
      role: 'output',
      shape: [config.vocabSize, config.hiddenSize],
    });
  }
  const plan: PlannedTensor[] = [];
  const missing: string[] = [];
  for (const [hfName, slot] of expected) {
    const name = format === 'meta' ? metaName(hfName) : hfName;
    if (!present.has(name)) {
      missing.push(name);
      continue;
    }
    present.delete(name);
    const info = source.info(name);
    if (info.shape.length !== slot.shape.length || info.shape.some((d, i) => d !== slot.shape[i])) {
      throw new Error(
        `checkpoint tensor ${name} has shape ${formatShape(info.shape)}, but the config implies ${formatShape(slot.shape)}`,
      );
    }
    if (info.dtype !== 'f32' && info.dtype !== 'f16' && info.dtype !== 'bf16') {
      throw new Error(`checkpoint tensor ${name} has dtype ${info.dtype}; weights must be f32, f16 or bf16`);
    }
    plan.push({ source: name, slot, dtype: info.dtype, byteLength: info.byteLength });
  }
  if (missing.length > 0) {
    const shown =
      missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, and ${missing.length - 5} more` : '');
    throw new Error(`checkpoint is missing ${missing.length} tensor(s) the config implies: ${shown}`);
  }
  const unexpected = [...present].filter((n) => !KNOWN_UNUSED.test(n));
  if (unexpected.length > 0) {
    const message = `checkpoint has ${unexpected.length} tensor(s) the model does not use: ${unexpected.slice(0, 5).join(', ')}`;
    if (options.strict) throw new Error(message);
    (options.onWarning ?? console.warn)(message);
  }
  return plan;
}

/**
 * Reorders the rows of Meta's wq/wk from interleaved RoPE pairs (2i, 2i+1) to HF's half-split order
 * (i, i + headDim/2) within each head, so one RoPE kernel layout serves both formats.
 * HF row `h*hd + j*hd/2 + i` = Meta row `h*hd + 2i + j`.
 */
export function interleavedToHalfSplit(
  bytes: Uint8Array,
  heads: number,
  headDim: number,
  rowBytes: number,
): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const from = (h * headDim + 2 * i + j) * rowBytes;
        const to = (h * headDim + j * half + i) * rowBytes;
        out.set(bytes.subarray(from, from + rowBytes), to);
      }
    }
  }
  return out;
}

/** Tensors are streamed to the device in chunks of this size: the host holds at most two at a time. */
const DEFAULT_CHUNK_BYTES = 16 << 20;

/** Bytes per chunk of `p`: whole rows, about `chunkBytes` (one row at least). */
function chunkStep(p: PlannedTensor, chunkBytes: number): number {
  const rowBytes = (p.slot.shape[1] ?? 1) * DTYPE_BYTES[p.dtype];
  return Math.max(1, Math.floor(chunkBytes / rowBytes)) * rowBytes;
}

async function loadTensors(
  config: LlamaConfig,
  format: CheckpointFormat,
  source: TensorSource,
  options: LoadOptions,
): Promise<LlamaWeights> {
  const device = options.device ?? cpu;
  const plan = planLoad(config, format, source, options);
  const totalBytes = plan.reduce((s, p) => s + p.byteLength, 0);
  const weights = new WeightAssembler(config, device);
  const chunkBytes = Math.max(4, Math.floor((options.chunkBytes ?? DEFAULT_CHUNK_BYTES) / 4) * 4);
  // Reading every chunk into new memory cost a loader more than the reading: the pages are faulted in,
  // then collected (measured on the 1B shape: 1.5 s of reads into new arrays, 0.5 s into two reused ones).
  const largest = Math.max(0, ...plan.map((p) => Math.min(chunkStep(p, chunkBytes), p.byteLength)));
  const buffers = [new Uint8Array(largest), new Uint8Array(largest)];
  let loadedBytes = 0;
  const time: LoadTime = { readWaitMs: 0, deviceWaitMs: 0, fillMs: 0 };
  const timed = async <T>(key: keyof LoadTime, work: Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await work;
    } finally {
      time[key] += performance.now() - t0;
    }
  };
  const fill = (weight: Parameters<typeof writeRows>[0], row: number, bytes: Uint8Array) => {
    const t0 = performance.now();
    writeRows(weight, row, bytes);
    time.fillMs += performance.now() - t0;
  };
  try {
    for (const [index, p] of plan.entries()) {
      const { weight, firstRow } = weights.place(p.slot, p.dtype);
      const { role, shape } = p.slot;
      const rowBytes = (shape[1] ?? 1) * DTYPE_BYTES[p.dtype];
      if (format === 'meta' && (role === 'wq' || role === 'wk')) {
        // The permutation moves whole rows within each head: done on the whole tensor (a small one).
        const heads = role === 'wq' ? config.heads : config.kvHeads;
        const halfSplit = interleavedToHalfSplit(
          await source.read(p.source),
          heads,
          config.headDim,
          rowBytes,
        );
        await timed('deviceWaitMs', writable(device));
        fill(weight, firstRow, halfSplit);
      } else {
        // Whole rows per chunk (a packed weight is written by rows). Two reused buffers take turns: the
        // next chunk is read into one while the current one is copied (and packed) into staging memory.
        const step = chunkStep(p, chunkBytes);
        let next = source.read(p.source, 0, Math.min(step, p.byteLength), buffers[0]);
        for (let at = 0, turn = 1; at < p.byteLength; at += step, turn ^= 1) {
          const chunk = await timed('readWaitMs', next);
          const following = at + step;
          if (following < p.byteLength) {
            next = source.read(p.source, following, Math.min(step, p.byteLength - following), buffers[turn]);
            next.catch(() => {}); // awaited next turn; marked handled in case an error ends the load first
          }
          await timed('deviceWaitMs', writable(device));
          fill(weight, firstRow + at / rowBytes, chunk);
        }
      }
      loadedBytes += p.byteLength;
      options.onProgress?.({
        tensor: p.source,
        index: index + 1,
        count: plan.length,
        loadedBytes,
        totalBytes,
        time: { ...time },
      });
    }
    return weights.weights();
  } catch (error) {
    weights.dispose(); // leave nothing half-loaded on the device
    throw error;
  }
}

/** The dims that fix every tensor shape: a checkpoint must match a preset in all of them. */
const SHAPE_FIELDS = [
  'hiddenSize',
  'layers',
  'heads',
  'kvHeads',
  'headDim',
  'intermediateSize',
  'vocabSize',
  'tieWordEmbeddings',
] as const;

function checkPreset(config: LlamaConfig, preset: LlamaConfig): void {
  for (const field of SHAPE_FIELDS) {
    if (config[field] !== preset[field]) {
      throw new Error(
        `checkpoint does not match the preset: ${field} is ${config[field]}, the preset says ${preset[field]}`,
      );
    }
  }
}

/**
 * Loads a Llama 3 / 3.1 / 3.2 model from any {@link TensorSource} and its config: the loader behind
 * `loadLlama(dir)`, and the one a browser uses, where there is no directory (safetensors read over HTTP
 * with `openHttpCheckpoint`, see `safetensorsSource`). `format` says how the tensors are named (default
 * `'hf'`). The source stays open: closing it is the caller's. Checks every tensor against the config before
 * reading any, and leaves nothing on the device if a read fails.
 *
 * @example
 * ```ts
 * import { memorySource, SafetensorsFile, serializeSafetensors, tensorEntries } from '@proj/core';
 * import { LLAMA32_1B, loadLlamaFrom, randomHfTensors, safetensorsSource } from '@proj/llama3';
 * const config = { ...LLAMA32_1B, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediateSize: 128, vocabSize: 256 };
 * // A checkpoint in memory here; in a browser, `await openHttpCheckpoint(url)` in place of the file.
 * const bytes = serializeSafetensors(await tensorEntries(randomHfTensors(config)));
 * const file = await SafetensorsFile.open(memorySource(bytes));
 * const model = await loadLlamaFrom(safetensorsSource(file), config);
 * console.log(model.config.layers); // 2
 * model.dispose();
 * ```
 */
export async function loadLlamaFrom<C extends LlamaConfig = LlamaConfig>(
  source: TensorSource,
  config: C,
  options: LoadOptions & LlamaOptions & { format?: CheckpointFormat } = {},
): Promise<Llama<C>> {
  if (options.preset) checkPreset(config, options.preset);
  const weights = await loadTensors(config, options.format ?? 'hf', source, options);
  try {
    return new Llama(config, weights, options.device ?? cpu, options.contextLength, options);
  } catch (error) {
    disposeWeights(weights);
    throw error;
  }
}
