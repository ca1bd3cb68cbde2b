/**
 * The kernels of {@link TokenSampler} on the GPU: one draw is a fixed sequence of dispatches, so that a
 * decode step that ends in a draw can be captured and replayed like a greedy one. What moves from draw to
 * draw (the draw counter, the seen flags) lives in device buffers that the kernels update themselves.
 *
 * The sequence (see `sample.ts` for the math they implement):
 * 1. `max` (one workgroup per chunk of the vocabulary: `sampleChunk` in `gpu/variants.ts`): each chunk's
 *    largest penalised logit, its index, and whether the chunk holds a NaN or +Infinity.
 * 2. `start` (one workgroup): the overall maximum; the result is decided here for broken logits (-1) and
 *    temperature 0 (the argmax). Clears the histogram and sets the threshold to `minP`.
 * 3. For top-k, then for top-p, three rounds of `hist` (every chunk counts its probabilities by 10 bits of
 *    their f32 bits, and sums them in 64-bit fixed point, so the sums are exact and the same on every run)
 *    and `scan` (one workgroup sums the bins in groups of 4, then one invocation walks the groups and
 *    then the bins from the top to the one holding the k-th token, or the top-p mass): a radix select of
 *    the threshold, finished early when a bin is taken whole. Top-p's rounds skip the tokens under its
 *    floor (see `sample.ts`), adding up only their mass.
 * 4. `draw` (per chunk): among the kept tokens, the best of `log p + Gumbel noise`, the noise hashed
 *    from (seed, draw counter, token id); `finish` (one invocation): the best of the chunks, written to
 *    the ids tensor; the counter moves on and the token is marked seen.
 * @module
 */
import { BEST_OF_WORKGROUP_WGSL, ORDER_KEYS_WGSL } from './order-wgsl.js';

/** One kernel of the sequence. */
export type SamplePhase = 'max' | 'start' | 'hist' | 'scan' | 'draw' | 'finish';

/** The histogram's bins: 1024 of (count, mass low word, mass high word). */
const BIN_WORDS = 3 * 1024;

/**
 * Words of the histogram: the bins, then the mass (low, high) of the kept tokens that top-p skips as too
 * small to reach its cut (see `floor` in `sample.ts`).
 */
export const HIST_WORDS = BIN_WORDS + 2;

/** Words of the sampler's state buffer; `COUNTER` is the draw counter, which persists between draws. */
export const STATE = {
  COUNTER: 0,
  DONE: 1, // the result is decided (broken logits, temperature 0)
  MAX: 2, // f32 bits of the largest penalised logit
  RESULT: 3, // the id (u32 bits of an i32; -1 when the logits are broken)
  TAU: 4, // the threshold so far: f32 bits of the smallest kept probability
  PREFIX: 5, // the radix select's chosen digits
  MASK: 6, // and the bits they cover
  NEED: 7, // top-k: how many tokens the select still needs within the prefix
  GOAL_LO: 8, // top-p: how much mass it still needs (64-bit fixed point, 2^-40)
  GOAL_HI: 9,
  RESOLVED: 10, // the current select has its value
  VALUE: 11, // its value: the select's threshold
  WORDS: 12,
} as const;

/** `scan` modes. */
export const SELECT = { COUNT: 0, MASS: 1 } as const;

const PARAMS = `struct Params {
  n: u32, chunk: u32, chunks: u32, shift: u32, mode: u32, last: u32, top_k: u32, seed: u32,
  temperature: f32, top_p: f32, min_p: f32, penalty: f32, floor: f32,
}`;

// The penalised logit of token i (the repetition penalty divides positive logits of seen tokens and
// multiplies negative ones) and its probability relative to the most likely token.
const SCORE = (penalty: boolean) => `
fn score(i: u32) -> f32 {
  let s = x[i];
  ${penalty ? 'if (seen[i] != 0u) { return select(s * p.penalty, s / p.penalty, s > 0.0); }' : ''}
  return s;
}
fn prob(s: f32, max: f32) -> f32 { return exp((s - max) / p.temperature); }`;

// Probabilities in 64-bit fixed point (low, high words; units of 2^-40): integer sums do not depend on
// the order of the additions, so the histograms are exact and the same on every run. Probabilities below
// 2^-40 count as 0 (all of them together are under 2^-23 of the mass).
const FIXED = `
fn fixed(v: f32) -> vec2u {
  let a = v * 256.0; // exact: a power of two; at most 2^25 for the masses of a vocabulary
  let hi = u32(a);
  return vec2u(u32((a - f32(hi)) * 4294967296.0), hi); // the fraction is exact, and below 2^32 once scaled
}
fn add64(a: vec2u, b: vec2u) -> vec2u { let lo = a.x + b.x; return vec2u(lo, a.y + b.y + select(0u, 1u, lo < a.x)); }
fn sub64(a: vec2u, b: vec2u) -> vec2u { return vec2u(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x)); }
fn ge64(a: vec2u, b: vec2u) -> bool { return a.y > b.y || (a.y == b.y && a.x >= b.x); }
fn unfixed(a: vec2u) -> f32 { return f32(a.y) / 256.0 + f32(a.x) / 1099511627776.0; }`;

// The noise of the draw: the same integer hash as `gumbelNoise` in sample.ts, and -log(E) of the
// exponential variate E = -log(1 - w). E is summed as its series for w < 1/8, where 1 - w is so close to
// 1 that log() may be accurate only to about 2^-21 absolutely (WGSL's bound), which is a large relative
// error in E for the tokens most likely to win.
const NOISE = `
fn mix32(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u; x *= 0x7feb352du; x ^= x >> 15u; x *= 0x846ca68bu; x ^= x >> 16u;
  return x;
}
fn draw_key(counter: u32) -> u32 { return mix32(mix32(p.seed ^ 0x9e3779b9u) ^ counter); }
fn gumbel(i: u32, key: u32) -> f32 {
  let w = (f32(mix32(mix32(i ^ key) + key) >> 9u) + 0.5) / 8388608.0; // in (0, 1)
  var e: f32;
  if (w < 0.125) {
    e = w * (1.0 + w * (1.0 / 2.0 + w * (1.0 / 3.0 + w * (1.0 / 4.0 + w * (1.0 / 5.0 + w * (1.0 / 6.0 + w * (1.0 / 7.0 + w / 8.0)))))));
  } else {
    e = -log(1.0 - w); // 1 - w is exact
  }
  return -log(e);
}`;

/** The bindings each kernel declares, in binding order (the uniforms follow them). */
export function sampleBindings(phase: SamplePhase, penalty: boolean): string[] {
  const seen = penalty ? ['seen'] : [];
  switch (phase) {
    case 'max':
      return ['x', ...seen, 'parts'];
    case 'start':
      return ['parts', 'state', 'hist'];
    case 'hist':
      return ['x', ...seen, 'state', 'hist'];
    case 'scan':
      return ['state', 'hist'];
    case 'draw':
      return ['x', ...seen, 'state', 'parts'];
    case 'finish':
      return ['parts', 'state', 'ids', ...seen];
  }
}

function declarations(phase: SamplePhase, penalty: boolean): string {
  const writes: Record<string, SamplePhase[]> = {
    parts: ['max', 'draw'],
    state: ['start', 'scan', 'finish'],
    seen: ['finish'],
  };
  const types: Record<string, string> = {
    x: 'array<f32>',
    seen: 'array<u32>',
    parts: 'array<u32>',
    state: 'array<u32>',
    hist: 'array<atomic<u32>>',
    ids: 'array<i32>',
  };
  const names = sampleBindings(phase, penalty);
  const lines = names.map((name, b) => {
    const rw = name === 'hist' || name === 'ids' || writes[name]?.includes(phase);
    return `@group(0) @binding(${b}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: ${types[name]};`;
  });
  return `${lines.join('\n')}\n${PARAMS}\n@group(0) @binding(${names.length}) var<uniform> p: Params;`;
}

const MAIN = (size: number) => `@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32)`;

// Workgroups that leave when the draw is decided (or the select resolved): read through workgroup memory,
// so that the whole workgroup takes the same branch before its barriers.
const SKIP_UNLESS_NEEDED = (words: string) => `
  if (lid == 0u) { skip = ${words}; }
  if (workgroupUniformLoad(&skip) != 0u) { return; }`;

/** The WGSL of one kernel of the draw; `penalty`: the repetition penalty reads the seen flags. */
export function sampleKernel(phase: SamplePhase, penalty: boolean): string {
  const S = STATE;
  const head = `${declarations(phase, penalty)}\n${ORDER_KEYS_WGSL}`;
  const chunk = `let wg = wid.y * nwg.x + wid.x;
  if (wg >= p.chunks) { return; } // uniform: the whole workgroup leaves together
  let first = wg * p.chunk;
  let end = min(first + p.chunk, p.n);`;
  switch (phase) {
    case 'max':
      return `${head}
${SCORE(penalty)}
${BEST_OF_WORKGROUP_WGSL}
var<workgroup> bad: atomic<u32>;
${MAIN(256)} {
  ${chunk}
  var bk = 0u;
  var bi = 0xffffffffu;
  var broken = 0u;
  for (var i = first + lid; i < end; i += 256u) {
    let s = score(i);
    let b = bitcast<u32>(s);
    if ((b & 0x7fffffffu) >= 0x7f800000u && b != 0xff800000u) { broken = 1u; } // NaN or +Infinity
    let k = key_of(s);
    if (better(k, i, bk, bi)) { bk = k; bi = i; }
  }
  if (broken != 0u) { atomicStore(&bad, 1u); }
  reduce_best(lid, bk, bi); // its barriers order the flag's stores before the read below
  if (lid == 0u) { parts[3u * wg] = sk[0]; parts[3u * wg + 1u] = si[0]; parts[3u * wg + 2u] = atomicLoad(&bad); }
}`;
    case 'start':
      return `${head}
${MAIN(256)} {
  for (var j = lid; j < ${HIST_WORDS}u; j += 256u) { atomicStore(&hist[j], 0u); }
  if (lid != 0u) { return; }
  var bk = 0u;
  var bi = 0xffffffffu;
  var broken = 0u;
  for (var c = 0u; c < p.chunks; c++) {
    broken |= parts[3u * c + 2u];
    if (better(parts[3u * c], parts[3u * c + 1u], bk, bi)) { bk = parts[3u * c]; bi = parts[3u * c + 1u]; }
  }
  let failed = broken != 0u || bk <= 0x007fffffu; // the key of -Infinity: no token above it
  state[${S.MAX}] = key_bits(bk);
  state[${S.RESULT}] = select(bi, 0xffffffffu, failed);
  state[${S.DONE}] = select(0u, 1u, failed || p.temperature == 0.0);
  state[${S.TAU}] = bitcast<u32>(p.min_p);
  state[${S.PREFIX}] = 0u;
  state[${S.MASK}] = 0u;
  state[${S.NEED}] = p.top_k;
  state[${S.RESOLVED}] = 0u;
  state[${S.VALUE}] = 0u;
}`;
    case 'hist':
      return `${head}
${SCORE(penalty)}
${FIXED}
var<workgroup> local: array<atomic<u32>, ${HIST_WORDS}>; // zeroed at the start, as all workgroup memory
var<workgroup> skip: u32;
// Adds a 64-bit value to the (low, high) words of local starting at word "at", carrying into the high word.
fn add_local64(at: u32, v: vec2u) {
  let old = atomicAdd(&local[at], v.x);
  atomicAdd(&local[at + 1u], v.y + select(0u, 1u, old + v.x < old));
}
${MAIN(256)} {
  ${chunk}
  ${SKIP_UNLESS_NEEDED(`state[${S.DONE}] | state[${S.RESOLVED}]`)}
  let max = bitcast<f32>(state[${S.MAX}]);
  let prefix = state[${S.PREFIX}];
  let mask = state[${S.MASK}];
  let mass_mode = p.mode == ${SELECT.MASS}u;
  let tau = select(0u, state[${S.TAU}], mass_mode); // top-p looks only at kept tokens
  let floor = select(0u, bitcast<u32>(p.floor), mass_mode);
  var below = 0.0; // the mass of this invocation's kept tokens under the floor (summed in order: the same every run)
  for (var i = first + lid; i < end; i += 256u) {
    let pr = prob(score(i), max);
    let key = bitcast<u32>(pr); // probabilities are >= 0, so their bits are in their order
    if (key < floor) {
      if (key >= tau) { below += pr; }
      continue;
    }
    if ((key & mask) == prefix && key >= tau) {
      let d = 3u * ((key >> p.shift) & 1023u);
      atomicAdd(&local[d], 1u);
      if (mass_mode) { // top-k needs only the counts
        add_local64(d + 1u, fixed(pr));
      }
    }
  }
  if (below > 0.0 && p.shift == 20u) { add_local64(${BIN_WORDS}u, fixed(below)); }
  workgroupBarrier();
  if (lid == 0u) {
    let mass = vec2u(atomicLoad(&local[${BIN_WORDS}u]), atomicLoad(&local[${BIN_WORDS + 1}u]));
    if (mass.x != 0u || mass.y != 0u) {
      let old = atomicAdd(&hist[${BIN_WORDS}u], mass.x);
      atomicAdd(&hist[${BIN_WORDS + 1}u], mass.y + select(0u, 1u, old + mass.x < old));
    }
  }
  for (var d = 3u * lid; d < ${BIN_WORDS}u; d += 768u) {
    let count = atomicLoad(&local[d]);
    if (count == 0u) { continue; }
    atomicAdd(&hist[d], count);
    let lo = atomicLoad(&local[d + 1u]);
    let old = atomicAdd(&hist[d + 1u], lo);
    atomicAdd(&hist[d + 2u], atomicLoad(&local[d + 2u]) + select(0u, 1u, old + lo < old));
  }
}`;
    case 'scan':
      return `${head}
${FIXED}
var<workgroup> bins: array<u32, ${HIST_WORDS}>; // (count, mass low, mass high) of each bin, the mass below
var<workgroup> groups: array<u32, 768>; // the same of each group of 4 bins
var<workgroup> skip: u32;
// One step of the walk from the top bin down: whether the select's token (the need-th, or the one at which
// the mass reaches the goal) is in an entry of count tokens and that mass; if not, the entry joins what lies above.
fn reaches(count: u32, mass: vec2u, above: ptr<function, u32>, above_mass: ptr<function, vec2u>, need: u32, goal: vec2u) -> bool {
  if (count == 0u) { return false; }
  if (p.mode == ${SELECT.COUNT}u && *above + count >= need) { return true; }
  if (p.mode == ${SELECT.MASS}u && ge64(add64(*above_mass, mass), goal)) { return true; }
  *above += count;
  *above_mass = add64(*above_mass, mass);
  return false;
}
${MAIN(256)} {
  ${SKIP_UNLESS_NEEDED(`state[${S.DONE}]`)}
  for (var j = lid; j < ${HIST_WORDS}u; j += 256u) { bins[j] = atomicLoad(&hist[j]); atomicStore(&hist[j], 0u); }
  workgroupBarrier();
  // Each invocation sums a group of 4 bins, so that the walk visits at most 256 groups and then 4 bins.
  var group_count = 0u;
  var group_mass = vec2u(0u);
  for (var b = 4u * lid; b < 4u * lid + 4u; b++) {
    group_count += bins[3u * b];
    group_mass = add64(group_mass, vec2u(bins[3u * b + 1u], bins[3u * b + 2u]));
  }
  groups[3u * lid] = group_count;
  groups[3u * lid + 1u] = group_mass.x;
  groups[3u * lid + 2u] = group_mass.y;
  workgroupBarrier();
  if (lid != 0u) { return; }
  if (state[${S.RESOLVED}] == 0u) {
    var goal = vec2u(state[${S.GOAL_LO}], state[${S.GOAL_HI}]);
    if (p.mode == ${SELECT.MASS}u && p.shift == 20u) { // the first round sees all kept tokens: their mass
      var total = vec2u(bins[${BIN_WORDS}u], bins[${BIN_WORDS + 1}u]); // the tokens under the floor
      for (var g = 0u; g < 256u; g++) { total = add64(total, vec2u(groups[3u * g + 1u], groups[3u * g + 2u])); }
      goal = fixed(p.top_p * unfixed(total));
    }
    var need = state[${S.NEED}];
    var above = 0u;
    var above_mass = vec2u(0u);
    var g = 255i;
    for (; g >= 0i; g--) {
      let at = 3u * u32(g);
      if (reaches(groups[at], vec2u(groups[at + 1u], groups[at + 2u]), &above, &above_mass, need, goal)) { break; }
    }
    // Not found: the goal is above the kept mass by rounding (top-p within 2^-23 of 1), which keeps them all.
    let found = g >= 0i;
    var digit = 0u;
    var whole = false;
    if (found) {
      digit = 4u * u32(g) + 3u;
      while (!reaches(bins[3u * digit], vec2u(bins[3u * digit + 1u], bins[3u * digit + 2u]), &above, &above_mass, need, goal)) {
        digit--; // the group reaches, so one of its bins does
      }
      let count = bins[3u * digit];
      need -= above;
      goal = sub64(goal, above_mass);
      whole = select(count == 1u, count == need, p.mode == ${SELECT.COUNT}u);
    }
    let value = state[${S.PREFIX}] | (digit << p.shift);
    state[${S.PREFIX}] = value;
    // Taken whole, the bin's lowest value would also keep the tokens under top-p's floor that share it
    // (they were not counted): the floor keeps them out.
    state[${S.MASK}] |= 1023u << p.shift;
    state[${S.NEED}] = need;
    state[${S.GOAL_LO}] = goal.x;
    state[${S.GOAL_HI}] = goal.y;
    // A bin taken whole needs no finer digits: its lowest value (the prefix with zeros below) keeps exactly it.
    if (!found || whole || p.shift == 0u) {
      state[${S.RESOLVED}] = 1u;
      state[${S.VALUE}] = select(0u, select(value, max(value, bitcast<u32>(p.floor)), p.mode == ${SELECT.MASS}u), found);
    }
  }
  if (p.last != 0u) { // the select's last round: its value joins the threshold; the next select starts afresh
    state[${S.TAU}] = max(state[${S.TAU}], state[${S.VALUE}]);
    state[${S.PREFIX}] = 0u;
    state[${S.MASK}] = 0u;
    state[${S.RESOLVED}] = 0u;
    state[${S.VALUE}] = 0u;
  }
}`;
    case 'draw':
      return `${head}
${SCORE(penalty)}
${NOISE}
${BEST_OF_WORKGROUP_WGSL}
var<workgroup> skip: u32;
${MAIN(256)} {
  ${chunk}
  ${SKIP_UNLESS_NEEDED(`state[${S.DONE}]`)}
  let max = bitcast<f32>(state[${S.MAX}]);
  let tau = state[${S.TAU}];
  let key = draw_key(state[${S.COUNTER}]);
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var i = first + lid; i < end; i += 256u) {
    let s = score(i);
    let pr = prob(s, max);
    if (pr > 0.0 && bitcast<u32>(pr) >= tau) {
      let k = key_of((s - max) / p.temperature + gumbel(i, key));
      if (better(k, i, bk, bi)) { bk = k; bi = i; }
    }
  }
  reduce_best(lid, bk, bi);
  if (lid == 0u) { parts[3u * wg] = sk[0]; parts[3u * wg + 1u] = si[0]; }
}`;
    case 'finish':
      return `${head}
${MAIN(1)} {
  var id = state[${S.RESULT}];
  if (state[${S.DONE}] == 0u) {
    var bk = 0u;
    id = 0xffffffffu;
    for (var c = 0u; c < p.chunks; c++) {
      if (better(parts[3u * c], parts[3u * c + 1u], bk, id)) { bk = parts[3u * c]; id = parts[3u * c + 1u]; }
    }
  }
  state[${S.RESULT}] = id;
  state[${S.COUNTER}] += 1u;
  ids[0] = bitcast<i32>(id);
  ${penalty ? 'if (id < p.n) { seen[id] = 1u; }' : ''}
}`;
  }
}
