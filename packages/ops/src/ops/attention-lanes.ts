/**
 * The `lanes` attention kernel (see `AttentionKernel` in `gpu/variants.ts`): what software adapters run.
 *
 * One subgroup of 8 lanes per (R query rows, kv head g, block of T of g's query heads). Each lane owns
 * Dh / 8 of the head dims (P vec4s), so loading a key or value row is one contiguous run across the lanes,
 * and it serves all T heads of all R rows (`lanesAttentionRows`: a software driver pays a scalar load per
 * lane and word, so every row that shares a load counts). Keys go 8 at a time: for each key, each head's partial dot product is summed over the
 * lanes (`subgroupAdd`) and lane jj keeps the score of key jj; one `exp` per lane then gives the 8
 * probabilities of the block (online softmax: a running max and sum per head, the accumulators rescaled
 * once per block), and each value row is added with its key's probability, handed to every lane by
 * `subgroupBroadcast`. No shared memory, no barriers: a software driver runs a workgroup's barrier as a
 * switch between coroutines, which made the 64-invocation `blocks` kernel slow there.
 * @module
 */
import type { BufferBinding, WebGpuDevice } from '../gpu/device.js';
import { lanesAttentionRows } from '../gpu/variants.js';
import { grid, type OutDType, Params } from '../op.js';
import { enableF16, LINEAR_WORKGROUP, params } from '../wgsl.js';
import type { AttentionDims, ResolvedAttentionOptions } from './attention.js';

const LANES = 8;
// As in the blocks kernel: a finite start for running maxima, whose exp against any real max is 0.
const NO_SCORE = '-3.0e38';

const range = (n: number) => [...Array(n).keys()];

/**
 * Query heads per workgroup for `group` query heads per kv head and `P` vec4s of q per lane: the largest
 * divisor of the group up to 4, fewer for large heads so that the q values and sums stay in registers.
 */
export function lanesHeadsPerWorkgroup(group: number, P: number): number {
  const most = Math.max(1, Math.min(4, Math.floor(8 / P)));
  let T = Math.min(most, group);
  while (group % T !== 0) T--;
  return T;
}

/**
 * The kernel for `P` vec4s of each head per lane, `T` query heads and `R` query rows per workgroup (the
 * rows share every key and value row loaded).
 */
function lanesWgsl(qType: OutDType, outType: OutDType, P: number, T: number, R: number): string {
  const heads = range(T);
  const cols = range(P);
  const rows = range(R);
  const states = rows.flatMap((r) => heads.map((t) => `${r}_${t}`)); // one online softmax per (row, head)
  const acc = (x: string, c: number) => `acc${x}_${c}`;
  const rowOf = (x: string) => x.split('_')[0];
  const headOf = (x: string) => x.split('_')[1];
  return `enable subgroups;
${enableF16(qType, outType)}
@group(0) @binding(0) var<storage, read> q: array<vec4<${qType}>>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<${outType}>>;
${params(4, { rows: 'u32', heads: 'u32', group: 'u32', kvHeads: 'u32', offset: 'u32', length: 'u32', causal: 'u32', scale: 'f32', cols: 'u32', blocks: 'u32', row0: 'u32', q0: 'u32', o0: 'u32' })}
// Workgroup (r, g, b): query rows row0 + ${R} r + i for i < ${R} (bound from q0 / o0, in vec4s; rows past the
// run are computed on a clamped row and not stored), kv head g, query heads g * group + b * ${T} + t for
// t < ${T}. Every branch below depends on the workgroup only (uniform), so the subgroup operations run
// with all 8 lanes.
@compute @workgroup_size(${LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  let b = wg % p.blocks;
  let g = (wg / p.blocks) % p.kvHeads;
  let first = (wg / (p.blocks * p.kvHeads)) * ${R}u;
  if (first >= p.rows) { return; }
  let h0 = g * p.group + b * ${T}u;
  let C = p.cols; // vec4s per head
  ${rows
    .map(
      (r) => `let row${r} = min(first + ${r}u, p.rows - 1u);
  var limit${r} = p.length; // the keys row ${r} sees
  if (p.causal != 0u) { limit${r} = min(limit${r}, p.offset + p.row0 + row${r} + 1u); }
  let qAt${r} = p.q0 + (row${r} * p.heads + h0) * C + lid * ${P}u; // this lane's first vec4 of head h0`,
    )
    .join('\n  ')}
  ${states.flatMap((x) => cols.map((c) => `let q${x}_${c} = vec4f(q[qAt${rowOf(x)} + ${headOf(x)}u * C + ${c}u]) * p.scale;`)).join('\n  ')}
  ${states.flatMap((x) => [`var m${x} = ${NO_SCORE};`, `var l${x} = 0.0;`, ...cols.map((c) => `var ${acc(x, c)} = vec4f(0.0);`)]).join('\n  ')}
  let limit = limit${R - 1}; // the last row's: the most keys
  let stride = p.kvHeads * C; // vec4s per key row
  let kvAt = g * C + lid * ${P}u;
  for (var j0 = 0u; j0 < limit; j0 += ${LANES}u) {
    ${states.map((x) => `var s${x} = ${NO_SCORE}; // lane jj: the score of key j0 + jj`).join('\n    ')}
    ${range(LANES)
      .map(
        (jj) => `if (j0 + ${jj}u < limit) {
      let at = (j0 + ${jj}u) * stride + kvAt;
      ${cols.map((c) => `let k${c} = k[at + ${c}u];`).join(' ')}
      ${states.map((x) => `s${x} = select(s${x}, subgroupAdd(${cols.map((c) => `dot(q${x}_${c}, k${c})`).join(' + ')}), lid == ${jj}u && j0 + ${jj}u < limit${rowOf(x)});`).join('\n      ')}
    }`,
      )
      .join('\n    ')}
    ${states
      .map(
        (x) => `{
      let mNew = max(m${x}, subgroupMax(s${x}));
      let alpha = exp(m${x} - mNew); // rescales what was summed under the old max
      s${x} = exp(s${x} - mNew); // now the probability of this lane's key (0 past the row's keys)
      l${x} = l${x} * alpha + subgroupAdd(s${x});
      m${x} = mNew;
      ${cols.map((c) => `${acc(x, c)} *= alpha;`).join(' ')}
    }`,
      )
      .join('\n    ')}
    ${range(LANES)
      .map(
        (jj) => `if (j0 + ${jj}u < limit) {
      let at = (j0 + ${jj}u) * stride + kvAt;
      ${cols.map((c) => `let v${c} = v[at + ${c}u];`).join(' ')}
      ${states.map((x) => `{ let pj = subgroupBroadcast(s${x}, ${jj}u); ${cols.map((c) => `${acc(x, c)} += pj * v${c};`).join(' ')} }`).join('\n      ')}
    }`,
      )
      .join('\n    ')}
  }
  ${rows
    .map(
      (r) => `if (first + ${r}u < p.rows) {
    let oAt = p.o0 + (row${r} * p.heads + h0) * C + lid * ${P}u;
    ${heads
      .flatMap((t) =>
        cols.map(
          (c) =>
            `out[oAt + ${t}u * C + ${c}u] = vec4<${outType}>(select(vec4f(0.0), ${acc(`${r}_${t}`, c)} / l${r}_${t}, l${r}_${t} > 0.0));`,
        ),
      )
      .join('\n    ')}
  }`,
    )
    .join('\n  ')}
}`;
}

/** The bindings and place of one dispatch of the kernel: a run of query rows, k and v bound from row 0. */
export interface LanesAttentionRun {
  /** q's binding, and the vec4 where the run's first row starts in it. */
  q: BufferBinding;
  q0: number;
  /** k and v, from key row 0 (every key below `length` in one binding). */
  k: BufferBinding;
  v: BufferBinding;
  /** The output's binding, and the vec4 where the run's first row starts in it. */
  out: BufferBinding;
  o0: number;
  /** The run's first query row, and its number of rows. */
  first: number;
  count: number;
}

/** Records the `lanes` kernel for one run of query rows. */
export function recordLanesAttention(
  device: WebGpuDevice,
  dims: AttentionDims,
  o: ResolvedAttentionOptions,
  types: { q: OutDType; out: OutDType },
  run: LanesAttentionRun,
): void {
  const { heads, kvHeads, headDim } = dims;
  const P = headDim / (4 * LANES);
  const group = heads / kvHeads;
  const T = lanesHeadsPerWorkgroup(group, P);
  const blocks = group / T;
  const R = lanesAttentionRows(run.count);
  const params = new Params()
    .u32(run.count)
    .u32(heads)
    .u32(group)
    .u32(kvHeads)
    .position(o.offset)
    .position(o.length)
    .u32(o.causal ? 1 : 0)
    .f32(o.scale)
    .u32(headDim / 4)
    .u32(blocks)
    .u32(run.first)
    .u32(run.q0)
    .u32(run.o0);
  device.dispatch({
    op: 'attention',
    key: `attention-lanes:${types.q}:${types.out}:${P}:${T}:${R}`,
    wgsl: () => lanesWgsl(types.q, types.out, P, T, R),
    buffers: [run.q, run.k, run.v, run.out],
    uniforms: params.data(),
    positional: params.positional,
    workgroups: grid(Math.ceil(run.count / R) * kvHeads * blocks, device.caps.maxWorkgroupsPerDimension),
  });
}
