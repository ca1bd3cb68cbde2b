/**
 * `matmul(a, b)`: `[M, K] x [K, N] -> [M, N]`, batched `[B, M, K] x [B, K, N]`, and `[B, M, K] x [K, N]`
 * (one `b` for every batch). Inputs may be any float dtype (read as f32); the result is f32.
 *
 * For `x @ W^T` with W stored `[N, K]` (every projection of a checkpoint) use `linear`, which reads W as
 * stored and has a decode GEMV; matmul is for products of activations (attention scores, tests).
 * @module
 */
import {
  cpuFloats,
  type DType,
  empty,
  type MatmulCheck,
  type MatmulShape,
  matmulShape,
  type Shape,
  type Tensor,
  tensor,
} from '@proj/core';
import { type GemmVariant, matmulVariant } from '../gpu/variants.js';
import { checkFloat, deviceOf, grid, isGpu, Params, runs } from '../op.js';
import { declare, LINEAR_WORKGROUP, loader } from '../wgsl.js';

/**
 * The CPU reference: `out[t, i, j] = sum_k a[t, i, k] * b[t, k, j]` for `batches` products, `b` shared by
 * all of them when `bBatched` is false. Accumulates in f64 and rounds once to f32.
 */
export function matmulReference(
  a: Float32Array,
  b: Float32Array,
  dims: { batches: number; m: number; k: number; n: number; bBatched: boolean },
): Float32Array {
  const { batches, m, k, n, bBatched } = dims;
  const out = new Float32Array(batches * m * n);
  const row = new Float64Array(n);
  for (let t = 0; t < batches; t++) {
    const a0 = t * m * k;
    const b0 = bBatched ? t * k * n : 0;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let kk = 0; kk < k; kk++) {
        const av = a[a0 + i * k + kk]!;
        const bRow = b0 + kk * n;
        for (let j = 0; j < n; j++) row[j]! += av * b[bRow + j]!;
      }
      out.set(row, (t * m + i) * n);
    }
  }
  return out;
}

/**
 * Matrix product over the last two dims (see the module for the batch rule).
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { matmul } from '@proj/ops';
 * const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const b = tensor([1, 0, 0, 1, 1, 1], [3, 2]);
 * console.log(await matmul(a, b).toArray()); // Float32Array [4, 5, 10, 11]
 * ```
 */
export function matmul<A extends Shape, B extends Shape>(
  a: Tensor<A>,
  b: Tensor<B> & MatmulCheck<A, B>,
): Tensor<MatmulShape<A, B>, 'f32'> {
  return matmulWith(a, b, undefined) as Tensor<MatmulShape<A, B>, 'f32'>;
}

/** {@link matmul} with a chosen kernel variant (tests and benchmarks); shapes are checked at run time only. */
export function matmulWith(a: Tensor, b: Tensor, variant: GemmVariant | undefined): Tensor<Shape, 'f32'> {
  const outShape = matmulShape('matmul', a.shape, b.shape);
  checkFloat('matmul', a, b);
  const device = deviceOf('matmul', a, b);
  const [m, k] = a.shape.slice(-2) as [number, number];
  const n = b.shape[b.rank - 1]!;
  const batches = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const bBatched = b.rank > 2;
  if (!isGpu(device)) {
    const dims = { batches, m, k, n, bBatched };
    return tensor(matmulReference(cpuFloats(a), cpuFloats(b), dims), outShape);
  }
  const out = empty(outShape, 'f32', device);
  if (out.numel === 0) return out;
  const v = variant ?? matmulVariant(device.caps);
  const blockM = v.kind === 'tiled' ? 16 * v.tileM : v.tileM * v.groupM;
  const blockN = v.kind === 'tiled' ? 16 * v.tileN : v.tileN * v.groupN;
  const gx = Math.ceil(n / blockN);
  const perBatch = gx * Math.ceil(m / blockM);
  // Batches larger than one binding in all are split into runs of whole batches (a shared b bound whole).
  for (const run of runs('matmul', [a, b, out], [m * k, bBatched ? k * n : 0, m * n], batches)) {
    const [ab, bb, ob] = run.bases as [number, number, number];
    device.dispatch({
      op: 'matmul',
      key: `matmul:${JSON.stringify(v)}:${a.dtype}:${b.dtype}`,
      wgsl: () => matmulWgsl(v, a.dtype, b.dtype),
      buffers: run.bindings,
      uniforms: new Params()
        .u32(m)
        .u32(n)
        .u32(k)
        .u32(gx)
        .u32(perBatch)
        .u32(run.count)
        .u32(bBatched ? k * n : 0)
        .u32(ab)
        .u32(bb)
        .u32(ob)
        .data(),
      workgroups: grid(perBatch * run.count, device.caps.maxWorkgroupsPerDimension),
    });
  }
  return out;
}

const range = (n: number) => [...Array(n).keys()];

const HEADER = (ta: DType, tb: DType) => `${declare(0, 'a', ta)}
${declare(1, 'b', tb)}
${declare(2, 'out', 'f32', 'read_write')}
// ab, bb, ob: where this run's first batch starts in the bindings of a, b and out.
struct Params { m: u32, n: u32, k: u32, gx: u32, per_batch: u32, batches: u32, sb: u32, ab: u32, bb: u32, ob: u32 }
@group(0) @binding(3) var<uniform> p: Params;
${loader('a', ta)}
${loader('b', tb)}`;

/** Renders the kernel of variant `v` (see `GemmVariant`) for inputs of dtypes `ta` and `tb`. */
function matmulWgsl(v: GemmVariant, ta: DType, tb: DType): string {
  const tiled = v.kind === 'tiled';
  const { tileM: TM, tileN: TN } = v;
  const [GN, GM] = tiled ? [16, 16] : [v.groupN, v.groupM];
  const sums = range(TM).flatMap((i) => range(TN).map((j) => ({ i, j, name: `acc${i}_${j}` })));
  // Invocation (lx, ly) owns rows mb + ly * TM + i (register) or mb + ly + 16 i (tiled, so that neighbouring
  // invocations read neighbouring shared-memory words), and likewise for columns.
  const rowOf = (i: number) => (tiled ? `mb + lid.y + ${16 * i}u` : `mb + lid.y * ${TM}u + ${i}u`);
  const colOf = (j: number) => (tiled ? `nb + lid.x + ${16 * j}u` : `nb + lid.x * ${TN}u + ${j}u`);
  const body = tiled
    ? `
  for (var k0 = 0u; k0 < p.k; k0 += 16u) {
    for (var s = t; s < ${16 * TM * 16}u; s += 256u) {
      let r = s / 16u;
      let kk = k0 + s % 16u;
      tile_a[(s % 16u) * ${16 * TM}u + r] = select(0.0, a_at(a0 + min(mb + r, p.m - 1u) * p.k + min(kk, p.k - 1u)), kk < p.k);
    }
    for (var s = t; s < ${16 * 16 * TN}u; s += 256u) {
      let c = s % ${16 * TN}u;
      let kk = k0 + s / ${16 * TN}u;
      tile_b[s] = select(0.0, b_at(b0 + min(kk, p.k - 1u) * p.n + min(nb + c, p.n - 1u)), kk < p.k);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      ${range(TM)
        .map((i) => `let a${i} = tile_a[kk * ${16 * TM}u + lid.y + ${16 * i}u];`)
        .join('\n      ')}
      ${range(TN)
        .map((j) => `let b${j} = tile_b[kk * ${16 * TN}u + lid.x + ${16 * j}u];`)
        .join('\n      ')}
      ${sums.map((s) => `${s.name} += a${s.i} * b${s.j};`).join('\n      ')}
    }
    workgroupBarrier();
  }`
    : `
  ${range(TM)
    .map((i) => `let ar${i} = a0 + min(${rowOf(i)}, p.m - 1u) * p.k;`)
    .join('\n  ')}
  ${range(TN)
    .map((j) => `let bc${j} = b0 + min(${colOf(j)}, p.n - 1u);`)
    .join('\n  ')}
  for (var kk = 0u; kk < p.k; kk++) {
    ${range(TM)
      .map((i) => `let a${i} = a_at(ar${i} + kk);`)
      .join('\n    ')}
    ${range(TN)
      .map((j) => `let b${j} = b_at(bc${j} + kk * p.n);`)
      .join('\n    ')}
    ${sums.map((s) => `${s.name} += a${s.i} * b${s.j};`).join('\n    ')}
  }`;
  return `${HEADER(ta, tb)}
${tiled ? `var<workgroup> tile_a: array<f32, ${16 * 16 * TM}>; // [k][m]\nvar<workgroup> tile_b: array<f32, ${16 * 16 * TN}>; // [k][n]` : ''}
@compute @workgroup_size(${GN}, ${GM})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) t: u32) {
  ${LINEAR_WORKGROUP}
  let batch = wg / p.per_batch;
  if (batch >= p.batches) { return; }
  let tile = wg % p.per_batch;
  let mb = (tile / p.gx) * ${TM * GM}u;
  let nb = (tile % p.gx) * ${TN * GN}u;
  let a0 = p.ab + batch * p.m * p.k;
  let b0 = p.bb + batch * p.sb;
  let o0 = p.ob + batch * p.m * p.n;
  ${sums.map((s) => `var ${s.name} = 0.0;`).join('\n  ')}
  ${body}
  ${sums
    .map(
      (s) =>
        `if (${rowOf(s.i)} < p.m && ${colOf(s.j)} < p.n) { out[o0 + (${rowOf(s.i)}) * p.n + ${colOf(s.j)}] = ${s.name}; }`,
    )
    .join('\n  ')}
}`;
}
