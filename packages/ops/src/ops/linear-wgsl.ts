/**
 * The WGSL of `linear` (`x [M, K] @ W^T`, W stored `[N, K]`): a GEMV for decode and GEMMs for prefill,
 * rendered from a variant chosen in `gpu/variants.ts`.
 *
 * Every kernel walks K in chunks. When a weight row is a whole number of 16-byte words (`vec`), a chunk is
 * one `vec4` load: 8 bf16 or f16 weights (unpacked in the kernel, bf16 exactly) or 4 f32 weights, against 2
 * or 1 `vec4<f32>` of x. Otherwise a chunk is one element read through the dtype's loader.
 *
 * Bindings: x (f32, or f16/bf16 through {@link withXDtype}), W, out (f32, or f16 through {@link withF16Out}), then the uniforms `p`. Each binding may be a range of its tensor; `xb`,
 * `wb` and `ob` are where this dispatch's first element sits in its binding (in the binding's units), so
 * a dispatch can cover any block of rows even when its start is not at an aligned byte offset.
 * @module
 */
import type { DType } from '@proj/core';
import type { GemmVariant, GemvVariant } from '../gpu/variants.js';
import { declareOut, enableF16, LINEAR_WORKGROUP, loader } from '../wgsl.js';

/** How a weight dtype is read: the binding types, chunk size and the WGSL that unpacks one chunk. */
export interface ChunkLayout {
  /** Weight elements per chunk (8, 4 or 1). */
  chunk: number;
  /** x array entries per chunk (x is `array<vec4<f32>>` in vec layouts, else `array<f32>`). */
  xPerChunk: number;
  /** True when chunks are 16-byte vector loads. */
  vec: boolean;
  /** The WGSL declarations of x, W and out at bindings 0..2, plus any loader functions. */
  declarations: string;
  /** Statements that read chunk `index` of W into `wa${r}` (and `wb${r}`). */
  loadW(r: number | string, index: string): string;
  /**
   * Statements that read the x chunk at x entry `index` into `xa${m}` (and `xb${m}`); with `g` (the
   * chunk's first entry within its row), each value is multiplied by the RMSNorm weight there.
   */
  loadX(m: number | string, index: string, g?: string): string;
  /** The expression adding chunk products: `wa${r} . xa${m}` (+ `wb${r} . xb${m}`). */
  product(r: number | string, m: number | string): string;
  /** The chunk's weights in K order, as WGSL expressions over what {@link ChunkLayout.loadW} defined. */
  elements(r: number | string): string[];
}

const XYZW = ['x', 'y', 'z', 'w'];

const OUT_F32 = '@group(0) @binding(2) var<storage, read_write> out: array<f32>;';
const STORE_F32 =
  'fn store(i: u32, v: f32) { if (p.acc == 1u) { out[i] = out[i] + v; } else { out[i] = v; } }';

/**
 * A rendered kernel with an f16 output: `out` becomes `array<f16>` (needs `shader-f16`) and `store` rounds
 * each f32 result once. Not for accumulating (`p.acc`): the residual it would add to stays f32.
 */
export function withF16Out(wgsl: string): string {
  const store = 'fn store(i: u32, v: f32) { out[i] = f16(v); }';
  return `${wgsl.includes('enable f16;') ? '' : enableF16('f16')}\n${wgsl.replace(OUT_F32, declareOut(2, 'out', 'f16')).replace(STORE_F32, store)}`;
}

// x as the kernels read it, through `x_at`: 4 elements per entry in vec layouts, else 1.
const X_VEC_F32 = `@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
fn x_at(i: u32) -> vec4<f32> { return x[i]; }`;
const X_SCALAR_F32 = `@group(0) @binding(0) var<storage, read> x: array<f32>;
fn x_at(i: u32) -> f32 { return x[i]; }`;
// The shareX kernel's x: its lanes each load one element (`x_el`, by element index) and broadcast it. From a
// scalar array that is one load per lane, where a vec4 entry and a select cost a software driver four
// loads (prefill on lavapipe: 36 -> 50 GFLOPS). `x_at` (entries of 4) serves subgroups narrower than 8.
const X_SHARED_F32 = `@group(0) @binding(0) var<storage, read> x: array<f32>;
fn x_at(i: u32) -> vec4<f32> { return vec4<f32>(x[4u * i], x[4u * i + 1u], x[4u * i + 2u], x[4u * i + 3u]); }
fn x_el(e: u32) -> f32 { return x[e]; }`;

/**
 * A rendered kernel that reads a 16-bit x (f16 or bf16) in place of f32: the same entries of 4 elements
 * (or 1), each widened to f32 as it is loaded, so x needs no separate cast pass. bf16 widens exactly, and
 * so does f16 (`unpack2x16float`, no `shader-f16` needed).
 */
export function withXDtype(wgsl: string, dtype: DType): string {
  if (dtype === 'f32') return wgsl;
  const bf16 = dtype === 'bf16';
  const widen4 = bf16
    ? 'bitcast<vec4<f32>>(vec4<u32>(q.x << 16u, q.x & 0xffff0000u, q.y << 16u, q.y & 0xffff0000u))'
    : 'vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y))';
  const widen1 = bf16
    ? 'bitcast<f32>(select(q << 16u, q & 0xffff0000u, (e & 1u) == 1u))'
    : 'unpack2x16float(q)[e & 1u]';
  return wgsl
    .replace(
      X_VEC_F32,
      `@group(0) @binding(0) var<storage, read> x: array<vec2<u32>>;
fn x_at(i: u32) -> vec4<f32> { let q = x[i]; return ${widen4}; }`,
    )
    .replace(
      X_SHARED_F32,
      `@group(0) @binding(0) var<storage, read> x: array<u32>;
fn x_at(i: u32) -> vec4<f32> { let q = vec2<u32>(x[2u * i], x[2u * i + 1u]); return ${widen4}; }
fn x_el(e: u32) -> f32 { let q = x[e >> 1u]; return ${widen1}; }`,
    )
    .replace(X_SCALAR_F32, `@group(0) @binding(0) var<storage, read> x: array<u32>;\n${loader('x', dtype)}`);
}

/**
 * A rendered kernel whose x is SwiGLU's input, `[M, 2K]` with gate and up side by side (as
 * `swigluPacked` takes): `x_at` returns `silu(gate) * up` for the entry the kernel asks for, reading the
 * two halves, so the kernels run unchanged on the `[M, K]` SwiGLU output, which is never written. `vec`
 * and `xPerChunk` as the kernel's chunk layout (entries of 4 elements, else 1). Apply after
 * {@link withXDtype}.
 */
export function withSwigluX(wgsl: string, vec: boolean, xPerChunk: number): string {
  const T = vec ? 'vec4<f32>' : 'f32';
  const at = wgsl.indexOf('fn x_at(i: u32)');
  if (at < 0) throw new Error('withSwigluX: the kernel has no x_at');
  const swiglu = (
    type: string,
  ) => `let e = exp(-abs(gate)); // silu as the swiglu op computes it: exp never overflows
  let r = 1.0 / (1.0 + e);
  return gate * select(e * r, r, gate >= ${type}(0.0)) * up;`;
  // The shareX kernel also reads single elements (x_el, by element index): the same, one element.
  const element = wgsl.includes('fn x_el(e: u32)')
    ? `
fn x_el(k: u32) -> f32 {
  let lde = p.kc * ${4 * xPerChunk}u; // elements per row of the [M, K] view
  let first = 4u * p.xb; // the first element of this dispatch's x
  let at = first + ((k - first) / lde) * 2u * lde + (k - first) % lde; // gate's place in [M, 2K]
  let gate = x_el_raw(at);
  let up = x_el_raw(at + lde);
  ${swiglu('f32')}
}`
    : '';
  return `${wgsl.slice(0, at)}fn x_at(i: u32) -> ${T} {
  // Entry i of the [M, K] view: its row and place, then gate and up in the [M, 2K] tensor.
  let ldx = p.kc * ${xPerChunk}u;
  let row = (i - p.xb) / ldx;
  let gate = x_raw(p.xb + row * 2u * ldx + (i - p.xb) % ldx);
  let up = x_raw(p.xb + row * 2u * ldx + (i - p.xb) % ldx + ldx);
  ${swiglu(T)}
}${element}
${wgsl
  .slice(at)
  .replace('fn x_at(i: u32)', 'fn x_raw(i: u32)')
  .replace('fn x_el(e: u32)', 'fn x_el_raw(e: u32)')}`;
}

/** The chunk layout of weights of `dtype`; `vec` when a row is a whole number of 16-byte words. */
export function chunkLayout(dtype: DType, vec: boolean): ChunkLayout {
  const out = OUT_F32;
  // x entry `i`, times the RMSNorm weight's entry `g` when given (see normWgsl).
  const X = (i: string, g?: string) =>
    g === undefined ? `x_at(${i})` : `(x_at(${i}) * ${vec ? 'g4_at' : 'g_at'}(${g}))`;
  if (!vec) {
    const wType = dtype === 'f32' ? 'f32' : 'u32';
    return {
      chunk: 1,
      xPerChunk: 1,
      vec,
      declarations: `${X_SCALAR_F32}
@group(0) @binding(1) var<storage, read> w: array<${wType}>;
${out}
${loader('w', dtype)}`,
      loadW: (r, i) => `let wa${r} = w_at(${i});`,
      loadX: (m, i, g) => `let xa${m} = ${X(i, g)};`,
      product: (r, m) => `wa${r} * xa${m}`,
      elements: (r) => [`wa${r}`],
    };
  }
  if (dtype === 'f32') {
    return {
      chunk: 4,
      xPerChunk: 1,
      vec,
      declarations: `${X_VEC_F32}
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
${out}`,
      loadW: (r, i) => `let wa${r} = w[${i}];`,
      loadX: (m, i, g) => `let xa${m} = ${X(i, g)};`,
      product: (r, m) => `dot(wa${r}, xa${m})`,
      elements: (r) => XYZW.map((c) => `wa${r}.${c}`),
    };
  }
  // 16-bit weights: one vec4<u32> holds elements 0..7, two per word, the even one in the low half.
  const bf16 = dtype === 'bf16';
  return {
    chunk: 8,
    xPerChunk: 2,
    vec,
    declarations: `${X_VEC_F32}
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
${out}`,
    // bf16 is the top half of an f32: shifting the low half up (even elements) and masking the high half
    // (odd elements) gives the exact values with two vector ops and no conversions. x is regrouped to
    // match: even elements in xa, odd ones in xb.
    loadW: bf16
      ? (r, i) => `let q${r} = w[${i}];
      let wa${r} = bitcast<vec4<f32>>(q${r} << vec4<u32>(16u));
      let wb${r} = bitcast<vec4<f32>>(q${r} & vec4<u32>(0xffff0000u));`
      : (r, i) => `let q${r} = w[${i}];
      let wa${r} = vec4<f32>(unpack2x16float(q${r}.x), unpack2x16float(q${r}.y));
      let wb${r} = vec4<f32>(unpack2x16float(q${r}.z), unpack2x16float(q${r}.w));`,
    loadX: bf16
      ? (m, i, g) => `let xl${m} = ${X(i, g)}; let xh${m} = ${X(`${i} + 1u`, g && `${g} + 1u`)};
      let xa${m} = vec4<f32>(xl${m}.xz, xh${m}.xz); let xb${m} = vec4<f32>(xl${m}.yw, xh${m}.yw);`
      : (m, i, g) => `let xa${m} = ${X(i, g)}; let xb${m} = ${X(`${i} + 1u`, g && `${g} + 1u`)};`,
    product: (r, m) => `dot(wa${r}, xa${m}) + dot(wb${r}, xb${m})`,
    elements: bf16
      ? (r) => XYZW.flatMap((c) => [`wa${r}.${c}`, `wb${r}.${c}`])
      : (r) => [...XYZW.map((c) => `wa${r}.${c}`), ...XYZW.map((c) => `wb${r}.${c}`)],
  };
}

/**
 * The uniforms every linear kernel takes, in order; with an RMSNorm fused in, also its epsilon, and its
 * weight `g` (of `norm`'s dtype) is bound before them. `g_at(k)` reads element k of g, `g4_at(e)` the 4
 * elements of entry e.
 */
const params = (norm?: DType) => `${
  norm
    ? `@group(0) @binding(3) var<storage, read> g: array<${norm === 'f32' ? 'f32' : 'u32'}>;
${loader('g', norm)}
fn g4_at(e: u32) -> vec4<f32> { return vec4<f32>(g_at(4u * e), g_at(4u * e + 1u), g_at(4u * e + 2u), g_at(4u * e + 3u)); }
`
    : ''
}struct Params {
  m: u32,   // rows of x (and out) in this dispatch
  n: u32,   // rows of W (columns of out) in this dispatch
  kc: u32,  // chunks per row
  xb: u32,  // first x entry of this dispatch in its binding
  wb: u32,  // first W entry
  ob: u32,  // first out element
  ldo: u32, // out row stride (the full N)
  gx: u32,  // GEMM workgroups along N
  acc: u32, // 1: add to out (out += x W^T, the residual fused in), 0: overwrite it
  ${norm ? 'eps: f32, // the RMSNorm epsilon' : ''}
}
@group(0) @binding(${norm ? 4 : 3}) var<uniform> p: Params;
// Every kernel writes its results through this, so accumulating costs one read of out and no extra pass.
${STORE_F32}`;

/** The RMSNorm scale of x row `m` from its sum of squares over the K elements of a row. */
const invRms = (ss: string, chunk: number) => `inverseSqrt(${ss} / f32(p.kc * ${chunk}u) + p.eps)`;

const range = (n: number) => [...Array(n).keys()];

/**
 * The decode kernel: `out[m, n] = sum_k x[m, k] W[n, k]` for all `m` rows at once, so W is read once.
 * Each workgroup owns `v.rows` W rows; its invocations stride along K and their sums are then reduced.
 * With `norm` (the dtype of an RMSNorm weight g), x is RMS-normalised on the way: the sums are of
 * `x[m, k] g[k] W[n, k]`, each invocation also sums the squares of the x values it loaded, and the reduced
 * sum of squares gives the row's scale, applied once to each result.
 */
export function gemvWgsl(v: GemvVariant, m: number, dtype: DType, vec: boolean, norm?: DType): string {
  const L = chunkLayout(dtype, vec);
  const { workgroupSize: WG, rows: R } = v;
  const products = range(m).flatMap((i) => range(R).map((r) => ({ i, r, name: `acc${i}_${r}` })));
  // The sums reduced across the workgroup: the products, then (with norm) each x row's sum of squares.
  const sums = [...products, ...(norm ? range(m).map((i) => ({ i, r: -1, name: `ss${i}` })) : [])];
  const P = products.length;
  const ldx = `p.kc * ${L.xPerChunk}u`;
  const square = (e: string) => (vec ? `dot(${e}, ${e})` : `${e} * ${e}`);
  const scale = (value: string, ss: string) => (norm ? `${value} * ${invRms(ss, L.chunk)}` : value);
  // x first, then one weight row at a time: few values are live at once (software drivers spill a lot).
  // One step of the K loop at chunk `c`, in its own block so unrolled copies can reuse the names.
  const step = (c: string) => `{
    let c = ${c};
    ${range(m)
      .map((i) => {
        const x = `p.xb + ${i}u * ${ldx} + c * ${L.xPerChunk}u`;
        if (!norm) return L.loadX(i, x);
        const squares = range(L.xPerChunk)
          .map((e) => `{ let v = x_at(${x} + ${e}u); ss${i} += ${square('v')}; }`)
          .join(' ');
        return `${squares}\n    ${L.loadX(i, x, `c * ${L.xPerChunk}u`)}`;
      })
      .join('\n    ')}
    ${range(R)
      .map(
        (r) => `${L.loadW(r, `p.wb + row${r} * p.kc + c`)}
    ${range(m)
      .map((i) => `acc${i}_${r} += ${L.product(r, i)};`)
      .join('\n    ')}`,
      )
      .join('\n    ')}
  }`;
  // Unrolled steps put several independent loads in flight per invocation (what GPUs need to reach their
  // bandwidth); the remainder runs one step at a time.
  const U = v.unroll ?? 1;
  const loop = `var c0 = lid;
  for (; c0 + ${(U - 1) * WG}u < p.kc; c0 += ${U * WG}u) {
    ${range(U)
      .map((u) => step(`c0 + ${u * WG}u`))
      .join('\n    ')}
  }
  for (; c0 < p.kc; c0 += ${WG}u) ${step('c0')}`;
  const S = sums.length;
  let reduce: string;
  let shared: string;
  let builtins = '';
  if (v.reduce === 'subgroup') {
    // Subgroups are runs of consecutive local_invocation_index in every implementation we know of; the
    // leader of each writes its sums, and the first S invocations add up the subgroups' sums.
    shared = `var<workgroup> part: array<f32, ${S * Math.ceil(WG / 4)}>;`;
    builtins = ', @builtin(subgroup_size) sgs: u32, @builtin(subgroup_invocation_id) sgl: u32';
    reduce = `${sums.map((s, j) => `let t${j} = subgroupAdd(${s.name});`).join('\n  ')}
  if (sgl == 0u) {
    let base = (lid / sgs) * ${S}u;
    ${sums.map((_, j) => `part[base + ${j}u] = t${j};`).join('\n    ')}
  }
  workgroupBarrier();
  let nsg = (${WG}u + sgs - 1u) / sgs;
  for (var j = lid; j < ${P}u; j += ${WG}u) {
    var total = 0.0;
    ${norm ? 'var ss = 0.0;' : ''}
    for (var g = 0u; g < nsg; g++) {
      total += part[g * ${S}u + j];
      ${norm ? `ss += part[g * ${S}u + ${P}u + j / ${R}u];` : ''}
    }
    let row = first + j % ${R}u;
    if (row < p.n) { store(p.ob + (j / ${R}u) * p.ldo + row, ${scale('total', 'ss')}); }
  }`;
  } else {
    shared = `var<workgroup> part: array<f32, ${S * WG}>;`;
    // Loops rather than unrolled statements: software drivers compile big kernels slowly.
    reduce = `${sums.map((s, j) => `part[${j * WG}u + lid] = ${s.name};`).join('\n  ')}
  for (var half = ${WG / 2}u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lid < half) {
      for (var j = 0u; j < ${S}u; j++) { part[j * ${WG}u + lid] += part[j * ${WG}u + lid + half]; }
    }
  }
  for (var j = lid; j < ${P}u; j += ${WG}u) {
    let row = first + j % ${R}u;
    if (row < p.n) {
      store(p.ob + (j / ${R}u) * p.ldo + row, ${scale(`part[j * ${WG}u]`, `part[(${P}u + j / ${R}u) * ${WG}u]`)});
    }
  }`;
  }
  return `${v.reduce === 'subgroup' ? 'enable subgroups;' : ''}
${L.declarations}
${params(norm)}
${shared}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32${builtins}) {
  ${LINEAR_WORKGROUP}
  let first = wg * ${R}u;
  if (first >= p.n) { return; }
  ${range(R)
    .map((r) => `let row${r} = min(first + ${r}u, p.n - 1u);`)
    .join('\n  ')}
  ${sums.map((s) => `var ${s.name} = 0.0;`).join('\n  ')}
  ${loop}
  ${reduce}
}`;
}

/**
 * The prefill kernels. `register` and `naive`: each invocation computes a `tileM x tileN` block of out
 * straight from memory, its lanes along N. `tiled`: 16 x 16 invocations share `[16 tileM, 16]` x and
 * `[16 tileN, 16]` W tiles in workgroup memory (W unpacked to f32 once, when staged).
 */
export function gemmWgsl(v: GemmVariant, dtype: DType, vec: boolean, packed = false, norm?: DType): string {
  if (packed && !v.shareX) throw new Error('packed weights are read by the shareX kernel only');
  if (norm && !v.shareX) throw new Error('an RMSNorm is fused into the shareX kernel only');
  if (v.kind === 'tiled') return tiledWgsl(v, dtype, vec);
  return v.shareX ? sharedXWgsl(v, dtype, vec, packed, norm) : registerWgsl(v, dtype, vec);
}

/** Whether {@link sharedXWgsl} can run this layout: vector chunks and K a multiple of 8. */
export function canShareX(dtype: DType, vec: boolean, k: number): boolean {
  return vec && k % 8 === 0 && (dtype === 'f32' || dtype === 'bf16' || dtype === 'f16');
}

/**
 * The register kernel with x shared through the subgroup: the 8 lanes of a workgroup (one subgroup on
 * software drivers) need the same x values, so each lane loads one of every 8 and `subgroupBroadcast`
 * hands them to the others. Software drivers pay a scalar load per lane and word, so this cuts the x loads
 * 8-fold (3x faster prefill on lavapipe). Where subgroups are narrower than 8, every lane loads all 8.
 *
 * With `v.interleaveX`, x is bound in groups of 4 interleaved rows (`ops/interleave-rows.ts`): each lane
 * loads its element of 4 rows at once (one 16-byte load where it took four), and `tileM` is a multiple of
 * 4. That kernel needs subgroups of 8: it has no fallback.
 *
 * With `packed`, W is in the layout of `gpu/packing.ts` with 8 lanes and `tileN` rows per lane: a
 * workgroup's rows are one group, and the words its lanes load together are adjacent. With `norm` (the
 * dtype of an RMSNorm weight g), x is RMS-normalised on the way: each lane multiplies the x values it loads
 * by g and sums their squares, the subgroup adds those sums up, and each result is scaled once at the end.
 */
function sharedXWgsl(v: GemmVariant, dtype: DType, vec: boolean, packed: boolean, norm?: DType): string {
  const L = chunkLayout(dtype, vec);
  const { tileM: TM, tileN: TN } = v;
  if (v.groupN !== 8 || v.groupM !== 1 || L.chunk === 1)
    throw new Error('shareX needs 8 x 1 lanes and vec chunks');
  const interleaved = v.interleaveX === true;
  if (interleaved && (norm || TM % 4 !== 0)) throw new Error('interleaved x: no norm, tileM a multiple of 4');
  const perBlock = 8 / L.chunk; // W chunks per 8 elements of K
  const sums = range(TM).flatMap((i) => range(TN).map((j) => ({ i, j, name: `acc${i}_${j}` })));
  const xs = (i: number) => range(8).map((e) => `x${i}_${e}`);
  const product = (i: number, j: number) => {
    const w = range(perBlock).flatMap((t) => L.elements(`${j}_${t}`));
    return range(2)
      .map((h) => {
        const ws = w.slice(4 * h, 4 * h + 4).join(', ');
        return `dot(vec4<f32>(${ws}), vec4<f32>(${xs(i)
          .slice(4 * h, 4 * h + 4)
          .join(', ')}))`;
      })
      .join(' + ');
  };
  // The 8 x values of row i for this block: passed on from the lanes that loaded them.
  const interleavedRow = (i: number) =>
    xs(i)
      .map((n, e) => `let ${n} = subgroupBroadcast(own${i >> 2}.${XYZW[i % 4]}, ${e}u);`)
      .join(' ');
  const rowMajorRow = (i: number) => `${xs(i)
    .map((n) => `var ${n}: f32;`)
    .join(' ')}
    if (share) {
      ${
        norm
          ? `let raw = x_el((xr${i} + xq) * 4u + lid);
      ss${i} += raw * raw;
      let own = raw * gl;`
          : `let own = x_el((xr${i} + xq) * 4u + lid);`
      }
      ${xs(i)
        .map((n, e) => `${n} = subgroupBroadcast(own, ${e}u);`)
        .join(' ')}
    } else {
      let lo = x_at(xr${i} + xq); let hi = x_at(xr${i} + xq + 1u);
      ${norm ? `ss${i} += dot(lo, lo) + dot(hi, hi);` : ''}
      ${xs(i)
        .map((n, e) => `${n} = ${e < 4 ? 'lo' : 'hi'}.${XYZW[e % 4]}${norm ? ` * g_at(k0 + ${e}u)` : ''};`)
        .join(' ')}
    }`;
  return `enable subgroups;
${interleaved ? L.declarations : L.declarations.replace(X_VEC_F32, X_SHARED_F32)}
${params(norm)}
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) sgs: u32) {
  ${LINEAR_WORKGROUP}
  let m0 = (wg / p.gx) * ${TM}u;
  if (m0 >= p.m) { return; }
  // Every lane stays to the end, since the others read x through it; lanes past N compute a clamped row
  // and do not write it.
  let n0 = ((wg % p.gx) * 8u + lid) * ${TN}u;
  let share = sgs >= 8u;
  // Chunk c of this lane's row j is at row_j + c * stride (rows past N: clamped, or zero padding if packed).
  ${range(TN)
    .map((j) =>
      packed
        ? `let row_${j} = p.wb + (wg % p.gx) * p.kc * ${8 * TN}u + ${j * 8}u + lid;`
        : `let row_${j} = p.wb + min(n0 + ${j}u, p.n - 1u) * p.kc;`,
    )
    .join('\n  ')}
  ${
    interleaved
      ? range(TM / 4)
          .map(
            (g) =>
              `let xg${g} = p.xb + min(m0 / 4u + ${g}u, (p.m + 3u) / 4u - 1u) * p.kc * ${L.chunk}u; // group m0 / 4 + ${g}`,
          )
          .join('\n  ')
      : range(TM)
          .map((i) => `let xr${i} = p.xb + min(m0 + ${i}u, p.m - 1u) * p.kc * ${L.xPerChunk}u;`)
          .join('\n  ')
  }
  ${sums.map((s) => `var ${s.name} = 0.0;`).join('\n  ')}
  ${
    norm
      ? range(TM)
          .map((i) => `var ss${i} = 0.0; // squares of the x values of row m0 + ${i} this lane loaded`)
          .join('\n  ')
      : ''
  }
  for (var b = 0u; b < p.kc; b += ${perBlock}u) {
    let xq = b * ${L.xPerChunk}u; // x entry (vec4) of this block's first element
    let k0 = b * ${L.chunk}u; // and its index in the row (for g)
    ${norm ? 'let gl = g_at(k0 + lid); // the weight of the x value this lane loads, the same for every row' : ''}
    ${
      interleaved // this lane's element k0 + lid of the group's 4 rows
        ? range(TM / 4)
            .map((g) => `let own${g} = x_at(xg${g} + k0 + lid);`)
            .join(' ')
        : ''
    }
    ${range(TM)
      .map((i) => (interleaved ? interleavedRow(i) : rowMajorRow(i)))
      .join('\n    ')}
    ${range(TN)
      .map(
        (j) => `${range(perBlock)
          .map((t) => L.loadW(`${j}_${t}`, `row_${j} + (b + ${t}u) * ${packed ? 8 * TN : 1}u`))
          .join('\n    ')}
    ${range(TM)
      .map((i) => `acc${i}_${j} += ${product(i, j)};`)
      .join('\n    ')}`,
      )
      .join('\n    ')}
  }
  ${
    // Every lane has loaded an eighth of each x row, or all of it where subgroups are narrower than 8.
    norm
      ? range(TM)
          .map((i) => `let inv${i} = ${invRms(`select(ss${i}, subgroupAdd(ss${i}), share)`, L.chunk)};`)
          .join('\n  ')
      : ''
  }
  ${sums
    .map(
      (s) =>
        `if (m0 + ${s.i}u < p.m && n0 + ${s.j}u < p.n) { store(p.ob + (m0 + ${s.i}u) * p.ldo + n0 + ${s.j}u, ${s.name}${norm ? ` * inv${s.i}` : ''}); }`,
    )
    .join('\n  ')}
}`;
}

function registerWgsl(v: GemmVariant, dtype: DType, vec: boolean): string {
  const L = chunkLayout(dtype, vec);
  const { tileM: TM, tileN: TN, groupN: GN, groupM: GM } = v;
  const sums = range(TM).flatMap((i) => range(TN).map((r) => ({ i, r, name: `acc${i}_${r}` })));
  return `${L.declarations}
${params()}
@compute @workgroup_size(${GN}, ${GM})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  ${LINEAR_WORKGROUP}
  let n0 = ((wg % p.gx) * ${GN}u + lid.x) * ${TN}u;
  // With one invocation along M, m0 is the same for the whole workgroup and every lane reads the same x: a
  // driver that sees uniform addresses loads it once (lavapipe 25 still loads it per lane, which is why its
  // kernel shares x through the subgroup instead: see docs/benchmarks/ops.md).
  let m0 = ${GM === 1 ? `(wg / p.gx) * ${TM}u` : `((wg / p.gx) * ${GM}u + lid.y) * ${TM}u`};
  if (n0 >= p.n || m0 >= p.m) { return; }
  ${range(TN)
    .map((r) => `let row${r} = min(n0 + ${r}u, p.n - 1u);`)
    .join('\n  ')}
  ${range(TM)
    .map((i) => `let xr${i} = min(m0 + ${i}u, p.m - 1u) * p.kc * ${L.xPerChunk}u;`)
    .join('\n  ')}
  ${sums.map((s) => `var ${s.name} = 0.0;`).join('\n  ')}
  for (var c = 0u; c < p.kc; c++) {
    ${range(TN)
      .map((r) => L.loadW(r, `p.wb + row${r} * p.kc + c`))
      .join('\n    ')}
    ${range(TM)
      .map((i) => L.loadX(i, `p.xb + xr${i} + c * ${L.xPerChunk}u`))
      .join('\n    ')}
    ${sums.map((s) => `${s.name} += ${L.product(s.r, s.i)};`).join('\n    ')}
  }
  ${sums
    .map(
      (s) =>
        `if (m0 + ${s.i}u < p.m && n0 + ${s.r}u < p.n) { store(p.ob + (m0 + ${s.i}u) * p.ldo + n0 + ${s.r}u, ${s.name}); }`,
    )
    .join('\n  ')}
}`;
}

/** K elements per shared-memory tile of the tiled GEMM. */
const BK = 16;

/**
 * The tiled kernels' staging of x: the workgroup's 256 invocations copy the `[BM, 16]` block of x at K
 * chunk `c0` into `xs` (`[k][m]`), zeros past the end of a row; `convert` maps each f32 value to the
 * tile's type, `zero` is that type's zero.
 */
function stageX(BM: number, vec: boolean, xPerChunk: number, convert: (v: string) => string, zero: string) {
  const xPer = vec ? BK / 4 : BK; // x entries per row of a tile
  const parts = vec ? XYZW.map((c) => `.${c}`) : [''];
  return `for (var s = t; s < ${BM * xPer}u; s += 256u) {
      let mm = s / ${xPer}u;
      let e = s % ${xPer}u;
      let xe = c0 * ${xPerChunk}u + e;
      let v = x_at(p.xb + min(mb + mm, p.m - 1u) * kx + min(xe, kx - 1u));
      let keep = xe < kx;
      ${parts.map((part, q) => `xs[(e * ${parts.length}u + ${q}u) * ${BM}u + mm] = select(${zero}, ${convert(`v${part}`)}, keep);`).join('\n      ')}
    }`;
}

function tiledWgsl(v: GemmVariant, dtype: DType, vec: boolean): string {
  if (v.f16) return tiledF16Wgsl(v, dtype, vec);
  const L = chunkLayout(dtype, vec);
  const { tileM: TM, tileN: TN } = v;
  const BM = 16 * TM;
  const BN = 16 * TN;
  const wPer = BK / L.chunk; // W chunks per row of a tile
  const sums = range(TM).flatMap((i) => range(TN).map((j) => ({ i, j, name: `acc${i}_${j}` })));
  return `${L.declarations}
${params()}
var<workgroup> xs: array<f32, ${BK * BM}>; // [k][m]
var<workgroup> ws: array<f32, ${BK * BN}>; // [k][n]
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) t: u32) {
  ${LINEAR_WORKGROUP}
  let nb = (wg % p.gx) * ${BN}u;
  let mb = (wg / p.gx) * ${BM}u;
  ${sums.map((s) => `var ${s.name} = 0.0;`).join('\n  ')}
  let ldx = p.kc * ${L.xPerChunk}u;
  let kx = ldx; // x entries per row
  for (var c0 = 0u; c0 < p.kc; c0 += ${wPer}u) {
    for (var s = t; s < ${BN * wPer}u; s += 256u) {
      let nn = s / ${wPer}u;
      let cc = s % ${wPer}u;
      let row = min(nb + nn, p.n - 1u);
      let c = min(c0 + cc, p.kc - 1u);
      ${L.loadW('', 'p.wb + row * p.kc + c')}
      let keep = c0 + cc < p.kc;
      ${L.elements('')
        .map((e, q) => `ws[(cc * ${L.chunk}u + ${q}u) * ${BN}u + nn] = select(0.0, ${e}, keep);`)
        .join('\n      ')}
    }
    ${stageX(BM, vec, L.xPerChunk, (v) => v, '0.0')}
    workgroupBarrier();
    for (var k = 0u; k < ${BK}u; k++) {
      ${range(TM)
        .map((i) => `let a${i} = xs[k * ${BM}u + lid.y + ${16 * i}u];`)
        .join('\n      ')}
      ${range(TN)
        .map((j) => `let b${j} = ws[k * ${BN}u + lid.x + ${16 * j}u];`)
        .join('\n      ')}
      ${sums.map((s) => `${s.name} += a${s.i} * b${s.j};`).join('\n      ')}
    }
    workgroupBarrier();
  }
  ${sums
    .map(
      (s) => `if (mb + lid.y + ${16 * s.i}u < p.m && nb + lid.x + ${16 * s.j}u < p.n) {
    store(p.ob + (mb + lid.y + ${16 * s.i}u) * p.ldo + nb + lid.x + ${16 * s.j}u, ${s.name});
  }`,
    )
    .join('\n  ')}
}`;
}

/** f16's largest finite value: values are clamped to it as they are staged (f16() of a larger f32 is undefined). */
const F16_MAX = '65504.0';

/**
 * The tiled kernel in half precision (`GemmVariant.f16`). Tiles are staged as f16, W's as `vec2<f16>`
 * pairs of adjacent rows (output columns), so each invocation owns `tileN / 2` column pairs,
 * `nb + 2 (lid.x + 16 j) + {0, 1}`, and one multiply-add of a broadcast x value by a pair does two outputs.
 * A K tile's 16 products are summed in f16, then added to the f32 sums: the f16 rounding error stays that
 * of a 16-term sum whatever K is.
 */
function tiledF16Wgsl(v: GemmVariant, dtype: DType, vec: boolean): string {
  const L = chunkLayout(dtype, vec);
  const { tileM: TM, tileN: TN } = v;
  if (TN % 2 !== 0) throw new Error(`the f16 tiled kernel needs an even tileN, got ${TN}`);
  const BM = 16 * TM;
  const BP = 8 * TN; // column pairs per tile
  const wPer = BK / L.chunk; // W chunks per row of a tile
  const half = (e: string) => `f16(clamp(${e}, -${F16_MAX}, ${F16_MAX}))`;
  const pairs = range(TM).flatMap((i) => range(TN / 2).map((j) => ({ i, j, name: `h${i}_${j}` })));
  const sums = pairs.flatMap((s) => [0, 1].map((c) => ({ ...s, c, name: `acc${s.i}_${2 * s.j + c}` })));
  const column = (j: number, c: number) => `nb + 2u * (lid.x + ${16 * j}u) + ${c}u`;
  return `enable f16;
${L.declarations}
${params()}
var<workgroup> xs: array<f16, ${BK * BM}>; // [k][m]
var<workgroup> ws: array<vec2<f16>, ${BK * BP}>; // [k][column pair]
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) t: u32) {
  ${LINEAR_WORKGROUP}
  let nb = (wg % p.gx) * ${2 * BP}u;
  let mb = (wg / p.gx) * ${BM}u;
  ${sums.map((s) => `var ${s.name} = 0.0;`).join('\n  ')}
  let kx = p.kc * ${L.xPerChunk}u; // x entries per row
  for (var c0 = 0u; c0 < p.kc; c0 += ${wPer}u) {
    // Each staging step reads one chunk of two adjacent W rows and writes whole pairs.
    for (var s = t; s < ${BP * wPer}u; s += 256u) {
      let pair = s / ${wPer}u;
      let cc = s % ${wPer}u;
      let c = min(c0 + cc, p.kc - 1u);
      let keep = c0 + cc < p.kc;
      let rowA = min(nb + 2u * pair, p.n - 1u);
      let rowB = min(nb + 2u * pair + 1u, p.n - 1u);
      ${L.loadW('A', 'p.wb + rowA * p.kc + c')}
      ${L.loadW('B', 'p.wb + rowB * p.kc + c')}
      ${range(L.chunk)
        .map((q) => {
          const [a, b] = [L.elements('A')[q]!, L.elements('B')[q]!];
          return `ws[(cc * ${L.chunk}u + ${q}u) * ${BP}u + pair] = select(vec2<f16>(), vec2<f16>(${half(a)}, ${half(b)}), keep);`;
        })
        .join('\n      ')}
    }
    ${stageX(BM, vec, L.xPerChunk, half, '0.0h')}
    workgroupBarrier();
    ${pairs.map((s) => `var ${s.name} = vec2<f16>();`).join('\n    ')}
    for (var k = 0u; k < ${BK}u; k++) {
      ${range(TM)
        .map((i) => `let a${i} = xs[k * ${BM}u + lid.y + ${16 * i}u];`)
        .join('\n      ')}
      ${range(TN / 2)
        .map((j) => `let b${j} = ws[k * ${BP}u + lid.x + ${16 * j}u];`)
        .join('\n      ')}
      ${pairs.map((s) => `${s.name} = fma(vec2<f16>(a${s.i}), b${s.j}, ${s.name});`).join('\n      ')}
    }
    ${sums.map((s) => `${s.name} += f32(h${s.i}_${s.j}.${'xy'[s.c]});`).join('\n    ')}
    workgroupBarrier();
  }
  ${sums
    .map(
      (s) => `if (mb + lid.y + ${16 * s.i}u < p.m && ${column(s.j, s.c)} < p.n) {
    store(p.ob + (mb + lid.y + ${16 * s.i}u) * p.ldo + ${column(s.j, s.c)}, ${s.name});
  }`,
    )
    .join('\n  ')}
}`;
}
