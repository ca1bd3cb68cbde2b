/**
 * WGSL shared by the selection kernels (`argmax`, `topk`, the sampler): the order of f32 values as
 * integer keys, and the best (key, index) pair of a workgroup.
 * @module
 */

/**
 * `key_of(v)`: the sort key of an f32 (the order of `orderKey` in `reduce.ts`: larger first, +0 above -0,
 * NaN below every number, as key 0); `key_bits(k)`: back to the f32 bits; `better`: the comparison, equal
 * keys by the lower index.
 */
export const ORDER_KEYS_WGSL = `
fn key_of(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0u; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
fn key_bits(k: u32) -> u32 { return select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u); }
fn better(ka: u32, ia: u32, kb: u32, ib: u32) -> bool { return ka > kb || (ka == kb && ia < ib); }`;

/** `reduce_best(lid, k, i)`: the workgroup's best of 256 (key, index) pairs, into `sk[0]`, `si[0]`. */
export const BEST_OF_WORKGROUP_WGSL = `
var<workgroup> sk: array<u32, 256>;
var<workgroup> si: array<u32, 256>;
fn reduce_best(lid: u32, k: u32, i: u32) {
  sk[lid] = k;
  si[lid] = i;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s && better(sk[lid + s], si[lid + s], sk[lid], si[lid])) { sk[lid] = sk[lid + s]; si[lid] = si[lid + s]; }
    workgroupBarrier();
  }
}`;
