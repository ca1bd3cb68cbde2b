/**
 * `linear(x, W)`: `x [..., K] @ W^T -> [..., N]` with W stored `[N, K]`, as checkpoints store it (no
 * transposed copy). Decode (at most `DECODE_ROWS` = 8 rows of x) reads every weight once for all the
 * rows (a GEMV); prefill runs a GEMM. The kernels and their layouts are chosen in `gpu/variants.ts`.
 * Weights may be f32, f16 or bf16 (16-bit ones unpacked in the kernel, bf16 exactly), and so may x (widened
 * to f32 as the kernels load it). The result is f32,
 * or f16 with `{ out: 'f16' }` (accumulated in f32, rounded once on store; needs `shader-f16` on WebGPU).
 *
 * Weights larger than one storage binding (a 128256 x 2048 bf16 lm_head is 525 MB, lavapipe binds at most
 * 128 MiB) are split into row ranges, each bound separately and dispatched into the matching columns of
 * the output.
 * @module
 */
import {
  type Check,
  checkShape,
  cpuData,
  cpuFloats,
  DTYPE_BYTES,
  empty,
  formatShape,
  fromFloat32,
  type Init,
  type LinearCheck,
  type LinearShape,
  linearShape,
  numel,
  type Shape,
  type ShapesMatch,
  type Tensor,
  tensor,
  toFloat32,
} from '@proj/core';
import type { GpuCaps } from '../gpu/caps.js';
import type { WebGpuDevice } from '../gpu/device.js';
import { GpuOpError } from '../gpu/errors.js';
import { groupRows, type RowPacking } from '../gpu/packing.js';
import {
  fusesRmsnorm,
  fusesSwiglu,
  type GemmVariant,
  type GemvVariant,
  gemmVariant,
  gemvMaxRows,
  gemvVariant,
  SOFTWARE_LANES,
} from '../gpu/variants.js';
import {
  bind,
  bindRange,
  bindSpan,
  checkFloat,
  checkRowMajor,
  cpuResult,
  deviceOf,
  grid,
  isGpu,
  type OutDType,
  type OutOptions,
  outDtype,
} from '../op.js';
import { interleavedBytes, interleaveRows } from './interleave-rows.js';
import { cast } from './layout.js';
import {
  canShareX,
  chunkLayout,
  gemmWgsl,
  gemvWgsl,
  withF16Out,
  withSwigluX,
  withXDtype,
} from './linear-wgsl.js';
import { packingOf } from './pack.js';
import { rmsnorm, rmsnormReference } from './rmsnorm.js';
import { swigluPacked, swigluPackedReference } from './swiglu-packed.js';

/**
 * The CPU reference: `out[i, j] = sum_k x[i, k] * w[j, k]` for x `[m, k]` and w `[n, k]`, accumulated in
 * f64 and rounded once to f32, so it is the correctly rounded result (up to f64 error) the kernels are
 * compared against.
 */
export function linearReference(
  x: Float32Array,
  w: Float32Array,
  m: number,
  n: number,
  k: number,
): Float32Array {
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    const xi = i * k;
    for (let j = 0; j < n; j++) {
      const wj = j * k;
      let sum = 0;
      for (let t = 0; t < k; t++) sum += x[xi + t]! * w[wj + t]!;
      out[i * n + j] = sum;
    }
  }
  return out;
}

/** Variant overrides, for tests that check every kernel on any adapter and for the benchmarks. */
export interface LinearVariants {
  /** The decode kernel's layout (default: {@link gemvVariant}). */
  gemv?: GemvVariant;
  /** The prefill kernel's layout (default: {@link gemmVariant}). */
  gemm?: GemmVariant;
  /** Largest M that runs the GEMV (default {@link gemvMaxRows}). */
  gemvMaxRows?: number;
  /** Compute SwiGLU inside the matmul (`{ swiglu: true }`; default {@link fusesSwiglu}). */
  fuseSwiglu?: boolean;
  /** Fold the RMSNorm into the kernel where it can (`{ norm }`; default {@link fusesRmsnorm}). */
  fuseNorm?: boolean;
}

/** An RMSNorm that {@link linear} applies to x first (see {@link LinearOptions.norm}). */
export interface FusedRmsNorm {
  /** The weight `g`, `[K]` (any float dtype). */
  weight: Tensor;
  /** Added to the mean square (default 1e-5, as `rmsnorm`). */
  eps?: number;
}

/** Options of {@link linear}. */
export interface LinearOptions<O extends OutDType> extends OutOptions<O> {
  /**
   * Normalise x first: `linear(x, W, { norm: { weight, eps } })` is `linear(rmsnorm(x, weight, eps), W)`.
   * For decode rows it is one pass where that pays (`fusesRmsnorm` in `gpu/variants.ts`): x is multiplied by
   * the weight as it is loaded, the sum of its squares is gathered on the way, and each result is scaled
   * once, so the normalised x is never written and there is one dispatch, not two. Otherwise (prefill, and
   * large weights on software adapters) the two ops run one after the other, the normalised x in the
   * result's dtype (f16 with `out: 'f16'`).
   */
  norm?: FusedRmsNorm;
  /**
   * x is SwiGLU's input, `[..., 2K]` with gate and up side by side (as `swigluPacked` takes): the result is
   * `swigluPacked(x) @ W^T`, with `silu(gate) * up` computed as the kernel loads x where that pays
   * (`fusesSwiglu`), else by `swigluPacked` first (into f16 or f32 as the norm above). Typed callers use
   * {@link swigluLinear}.
   */
  swiglu?: boolean;
}

/**
 * `x @ W^T`: x `[..., K]`, W `[N, K]` -> `[..., N]` (f32, or f16 with `{ out: 'f16' }`); with
 * `{ norm }`, `rmsnorm(x) @ W^T` in one pass ({@link LinearOptions.norm}).
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { linear } from '@proj/ops';
 * const x = tensor([1, 2, 3], [1, 3]);
 * const w = tensor([1, 0, 0, 0, 1, 1], [2, 3]); // two output features
 * console.log(await linear(x, w).toArray()); // Float32Array [1, 5]
 * ```
 */
export function linear<X extends Shape, W extends Shape, O extends OutDType = 'f32'>(
  x: Tensor<X>,
  w: Tensor<W> & LinearCheck<X, W>,
  options: LinearOptions<O> = {},
): Tensor<LinearShape<X, W>, O> {
  return linearWith(x, w, {}, undefined, options) as Tensor<LinearShape<X, W>, O>;
}

/**
 * `acc += x @ W^T`, in place (BLAS's `beta = 1`): a residual connection fused into the projection that feeds
 * it, so `x + attention(...)` costs no separate add kernel and no extra pass over memory. `acc` must be an
 * f32 tensor of the output's shape.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { linearAccumulate } from '@proj/ops';
 * const acc = tensor([10, 20], [1, 2]);
 * linearAccumulate(acc, tensor([1, 2], [1, 2]), tensor([1, 0, 0, 1], [2, 2]));
 * console.log(await acc.toArray()); // Float32Array [11, 22]
 * ```
 */
export function linearAccumulate<A extends Shape, X extends Shape, W extends Shape>(
  acc: Tensor<A> &
    Check<ShapesMatch<A, LinearShape<X, W>>, 'linearAccumulate: acc must have the shape of x @ W^T'>,
  x: Tensor<X>,
  w: Tensor<W> & LinearCheck<X, W>,
): void {
  linearWith(x, w, {}, acc);
}

/**
 * `swigluPacked(gateUp) @ W^T`: `gateUp [..., 2K]` holds gate and up side by side, W is `[N, K]`, the
 * result `[..., N]`. Where it pays (`fusesSwiglu`: decode rows on GPUs) it is one pass: `silu(gate) * up` is
 * computed as the kernel loads its input, so the `[..., K]` SwiGLU output is never written (one dispatch,
 * not two). With `acc`, the product is added to it in place (`linearAccumulate`'s residual) and returned.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { swigluLinear } from '@proj/ops';
 * const gateUp = tensor([0, 1, 2, 3], [1, 4]); // gate [0, 1], up [2, 3]
 * const y = swigluLinear(gateUp, tensor([1, 1], [1, 2])); // silu(0) * 2 + silu(1) * 3
 * console.log(await y.toArray()); // Float32Array [2.1932]
 * ```
 */
export function swigluLinear<G extends Shape, W extends Shape>(
  gateUp: Tensor<G>,
  w: Tensor<W>,
  acc?: Tensor,
): Tensor<readonly [...Init<G>, W[0]]> {
  return linearWith(gateUp, w, {}, acc, { swiglu: true }) as Tensor<readonly [...Init<G>, W[0]]>;
}

/**
 * {@link linear} with chosen kernel variants (tests and benchmarks); shapes are checked at run time only.
 * With `into`, the product is added to that tensor in place and returned (f32 only).
 */
export function linearWith(
  x: Tensor,
  w: Tensor,
  variants: LinearVariants,
  into?: Tensor,
  options: LinearOptions<OutDType> = {},
): Tensor<Shape, OutDType> {
  const swiglu = options.swiglu === true;
  const xLast = x.shape[x.shape.length - 1] ?? 0;
  checkShape(
    !swiglu || xLast % 2 === 0,
    'linear',
    () => `with swiglu, x ${formatShape(x.shape)} must have an even last dim (gate and up side by side)`,
  );
  // The shape of the x the product sees: SwiGLU halves the last dim.
  const xShape = swiglu ? [...x.shape.slice(0, -1), xLast / 2] : x.shape;
  const outShape = linearShape('linear', xShape, w.shape);
  checkFloat('linear', x, w);
  const device = deviceOf('linear', x, w, ...(into ? [into] : []));
  const o = outDtype('linear', device, options);
  if (into && o !== 'f32') throw new Error(`linearAccumulate: acc is f32; out: '${o}' is not supported`);
  if (into) {
    checkShape(
      into.dtype === 'f32' &&
        into.shape.length === outShape.length &&
        into.shape.every((d, i) => d === outShape[i]),
      'linearAccumulate',
      () =>
        `acc ${formatShape(into.shape)} ${into.dtype} must be f32 ${formatShape(outShape)} (x ${formatShape(x.shape)} @ W ${formatShape(w.shape)}^T)`,
    );
  }
  const [n, k] = w.shape as [number, number];
  const m = numel(xShape) / Math.max(k, 1);
  const xk = swiglu ? 2 * k : k; // x elements per row as stored
  const norm = options.norm;
  const eps = norm?.eps ?? 1e-5;
  if (norm && swiglu) throw new Error('linear: norm and swiglu do not combine');
  if (norm) {
    checkShape(
      norm.weight.shape.length === 1 && norm.weight.shape[0] === k,
      'linear',
      () =>
        `the norm weight ${formatShape(norm.weight.shape)} must be [K] = [${k}] (x ${formatShape(x.shape)})`,
    );
    checkFloat('linear', norm.weight);
    deviceOf('linear', x, norm.weight);
  }
  if (!isGpu(device)) {
    const made = norm
      ? rmsnormReference(cpuFloats(x), cpuFloats(norm.weight), eps)
      : swiglu
        ? swigluPackedReference(cpuFloats(x), k)
        : undefined;
    // The op-by-op definition: the norm or SwiGLU output in the result's dtype, as WebGPU writes it where it
    // runs them as their own ops (below; a kernel that folds them in keeps them in f32).
    const xs = !made ? cpuFloats(x) : o === 'f16' ? toFloat32('f16', fromFloat32('f16', made)) : made;
    const product = linearReference(xs, cpuFloats(w), m, n, k);
    if (!into) return cpuResult(product, outShape, o);
    const target = cpuData(into as Tensor<Shape, 'f32'>);
    for (let i = 0; i < target.length; i++) target[i] = target[i]! + product[i]!;
    return into as Tensor<Shape, 'f32'>;
  }
  checkRowMajor('linear', x);
  if (into) checkRowMajor('linearAccumulate', into);
  const packing = packingOf(w);
  if (packing && (variants.gemm || variants.gemv)) {
    throw new Error('linear: a packed weight runs one kernel; variants apply to row-major weights');
  }
  const caps = device.caps;
  const gemvRows = variants.gemvMaxRows ?? gemvMaxRows(caps);
  const wBytes = DTYPE_BYTES[w.dtype];
  const vec = k % 4 === 0 && (k * wBytes) % 16 === 0;
  // A norm or SwiGLU that this kernel does not fold (or where folding does not pay) runs as its own op
  // first, writing the result's dtype (f16 x for the product when the caller asked for f16). The GEMV and
  // the shareX kernel (packed weights among them) can fold a norm, every kernel SwiGLU.
  const normFolds = () =>
    (variants.fuseNorm ?? fusesRmsnorm(caps, m, n)) &&
    (packing !== undefined ||
      m <= gemvRows ||
      ((variants.gemm ?? gemmVariant(caps, m)).shareX === true && canShareX(w.dtype, vec, k)));
  const input =
    norm && !normFolds()
      ? rmsnorm(x, norm.weight, eps, { out: o })
      : swiglu && !(variants.fuseSwiglu ?? fusesSwiglu(caps, m))
        ? swigluPacked(x, { out: o }) // [..., 2K] -> [..., K], in the result's dtype
        : undefined;
  if (input) {
    const result = linearWith(input, w, variants, into, { out: o });
    input.dispose(); // back to the pool after the recorded work
    return result;
  }
  if (into && (k === 0 || into.numel === 0)) return into as Tensor<Shape, 'f32'>;
  const out = (into as Tensor<Shape, OutDType> | undefined) ?? empty(outShape, o, device);
  if (out.numel === 0) return out;
  if (k === 0) {
    out.dispose();
    const zeros = new Float32Array(m * n);
    return o === 'f32' ? tensor(zeros, outShape, { device }) : cast(tensor(zeros, outShape, { device }), o);
  }
  const layout = chunkLayout(w.dtype, vec);
  const kc = k / layout.chunk;
  // Row blocks that each fit one binding: of W (columns of out), and of x and out together. Packed
  // weights are bound in whole row groups, which start at aligned offsets (a group is 512 bytes or more).
  const nBlock = packing ? groupsPerBinding(device, packing) : rowsPerBinding(device, k * wBytes);
  const xBytes = DTYPE_BYTES[x.dtype];
  const mBlock = Math.min(rowsPerBinding(device, xk * xBytes), rowsPerBinding(device, n * 4));
  // Whether the prefill kernel may read x in groups of 4 interleaved rows (`GemmVariant.interleaveX`): x is
  // then copied once into that layout, which the kernel cannot combine with a folded norm or SwiGLU, and
  // which it reads through subgroups of 8 lanes at least (it has no fallback for narrower ones).
  const interleave =
    !norm &&
    !swiglu &&
    caps.subgroupMinSize >= SOFTWARE_LANES.lanes &&
    mBlock >= m &&
    canShareX(w.dtype, vec, k) &&
    interleavedBytes(m, k) <= caps.maxStorageBindingSize;
  let interleaved: Tensor | undefined; // made when a kernel first needs it
  for (let m0 = 0; m0 < m; m0 += mBlock) {
    const mc = Math.min(mBlock, m - m0);
    const xs = bindSpan('linear', x, m0 * xk, mc * xk);
    const os = bindSpan('linear', out, m0 * n, mc * n);
    for (let n0 = 0; n0 < n; n0 += nBlock) {
      const nc = Math.min(nBlock, n - n0);
      const ws = packing
        ? {
            binding: bindRange(
              w,
              n0 * k * wBytes,
              Math.ceil(nc / groupRows(packing)) * groupRows(packing) * k * wBytes,
            ),
            base: 0,
          }
        : bindSpan('linear', w, n0 * k, nc * k);
      const gemv = !packing && mc <= gemvRows;
      let v = packing
        ? packedVariant(packing, mc, caps, interleave)
        : gemv
          ? (variants.gemv ?? gemvVariant(caps))
          : (variants.gemm ?? gemmVariant(caps, mc, interleave, x.dtype));
      // What a forced variant asks for and this product cannot do, it does without.
      if (!gemv && (v as GemmVariant).shareX && !canShareX(w.dtype, vec, k)) v = { ...v, shareX: false };
      if (!gemv && !interleave && (v as GemmVariant).interleaveX) v = { ...v, interleaveX: false };
      if (!gemv && (v as GemmVariant).f16 && !caps.f16) {
        throw new GpuOpError(
          'linear',
          'the f16 GEMM variant needs the shader-f16 feature, which this device lacks',
        );
      }
      const interleavedX = !gemv && (v as GemmVariant).interleaveX === true;
      if (interleavedX) interleaved ??= interleaveRows(device, x, m, k);
      const xBinding = interleavedX ? bind('linear', interleaved!) : xs.binding;
      const xFirst = interleavedX ? 0 : xs.base / (vec ? 4 : 1);
      const [gx, count] = gemv
        ? [1, Math.ceil(nc / (v as GemvVariant).rows)]
        : gemmGroups(v as GemmVariant, mc, nc);
      const [wx, wy] = grid(count, caps.maxWorkgroupsPerDimension);
      const params = new Uint32Array([
        mc,
        nc,
        kc,
        xFirst,
        ws.base / layout.chunk,
        os.base + n0,
        n,
        gx,
        into ? 1 : 0,
        ...(norm ? new Uint32Array(new Float32Array([eps]).buffer) : []),
      ]);
      device.dispatch({
        op: 'linear',
        key: `linear:${gemv ? 'gemv' : packing ? 'packed' : 'gemm'}:${JSON.stringify(v)}:${gemv ? mc : ''}:${x.dtype}:${w.dtype}:${vec}:${o}:${norm?.weight.dtype ?? ''}:${swiglu ? 'swiglu' : ''}`,
        wgsl: () => {
          const normDtype = norm?.weight.dtype;
          const code = gemv
            ? gemvWgsl(v as GemvVariant, mc, w.dtype, vec, normDtype)
            : gemmWgsl(v as GemmVariant, w.dtype, vec, packing !== undefined, normDtype);
          const typed = withXDtype(o === 'f16' ? withF16Out(code) : code, interleavedX ? 'f32' : x.dtype);
          return swiglu ? withSwigluX(typed, vec, layout.xPerChunk) : typed;
        },
        buffers: norm
          ? [xBinding, ws.binding, os.binding, bind('linear', norm.weight)]
          : [xBinding, ws.binding, os.binding],
        uniforms: params,
        workgroups: [wx, wy],
      });
    }
  }
  interleaved?.dispose(); // back to the pool after the recorded work
  return out;
}

/** The kernel that reads packed weights: the shareX register kernel with the packing's lanes and rows. */
function packedVariant(packing: RowPacking, m: number, caps: GpuCaps, interleave: boolean): GemmVariant {
  const { lanes, rowsPerLane } = packing;
  return { ...gemmVariant(caps, m, interleave), tileN: rowsPerLane, groupN: lanes, shareX: true };
}

/** Rows of a packed weight per binding: as many whole groups as fit. */
function groupsPerBinding(device: WebGpuDevice, packing: RowPacking): number {
  const groupBytes = groupRows(packing) * packing.rowBytes;
  const groups = Math.floor(device.caps.maxStorageBindingSize / groupBytes);
  if (groups < 1) {
    throw new GpuOpError(
      'linear',
      `one packed row group of ${groupBytes} bytes does not fit a binding (maxStorageBufferBindingSize = ${device.caps.maxStorageBindingSize})`,
    );
  }
  return groups * groupRows(packing);
}

/** Workgroups of a GEMM dispatch: `[groups along N, total groups]`. */
function gemmGroups(v: GemmVariant, m: number, n: number): [number, number] {
  const gx = Math.ceil(n / (v.tileN * v.groupN));
  return [gx, gx * Math.ceil(m / (v.tileM * v.groupM))];
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * How many rows of `rowBytes` one binding may hold. Preferably a multiple of the rows per alignment
 * period, so every block starts at an aligned offset; when that period alone is too large (tiny test
 * limits, odd row sizes), blocks start anywhere and the binding begins at the aligned offset before.
 */
function rowsPerBinding(device: WebGpuDevice, rowBytes: number): number {
  const { maxStorageBindingSize: max, storageOffsetAlignment: align } = device.caps;
  const period = align / gcd(rowBytes, align);
  if (period * rowBytes <= max) return Math.floor(max / (period * rowBytes)) * period;
  const rows = Math.floor((max - align) / rowBytes);
  if (rows < 1) {
    throw new GpuOpError(
      'linear',
      `one row of ${rowBytes} bytes does not fit a binding (maxStorageBufferBindingSize = ${max})`,
    );
  }
  return rows;
}
