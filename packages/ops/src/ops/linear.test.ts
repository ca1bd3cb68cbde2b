import { cpuFloats, fromArray, Rng, randn, type Tensor, tensor } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { useTestDevices } from '../../../../test-support/webgpu.js';
import type { WebGpuDevice } from '../gpu/device.js';
import { type GemmVariant, type GemvVariant, NAIVE_GEMM } from '../gpu/variants.js';
import { expectClose } from '../testing.js';
import {
  type LinearVariants,
  linear,
  linearAccumulate,
  linearReference,
  linearWith,
  swigluLinear,
} from './linear.js';
import { packingOf, packLinearWeight } from './pack.js';
import { rmsnormReference } from './rmsnorm.js';
import { swigluPackedReference } from './swiglu-packed.js';

/**
 * Tolerance against the f64 reference for a sum of K products of typical size `rms`. Summing in f32, each
 * of the K additions rounds by at most 2^-24 of a partial sum, and partial sums of random terms grow like
 * sqrt(K) * rms, so the errors add up (as a random walk of K steps) to about 2^-24 * K * rms; we allow 4x
 * that. The rtol covers the final rounding of both sides. A wrongly decoded bf16 (2^-9 relative) or a
 * dropped term is orders of magnitude above this.
 */
function tolerance(k: number, rms = 1): { atol: number; rtol: number } {
  return { atol: 4 * 2 ** -24 * k * rms + 1e-30, rtol: 2 ** -22 };
}

async function check(
  gpu: WebGpuDevice,
  m: number,
  n: number,
  k: number,
  dtype: 'f32' | 'f16' | 'bf16',
  v: LinearVariants | 'packed' = {},
  xDtype: 'f32' | 'f16' | 'bf16' = 'f32',
) {
  if (!runs(gpu, v)) return;
  const x = randn([m, k], { seed: m * 1000 + k, dtype: xDtype });
  const w = randn([n, k], { seed: n * 7 + k, dtype });
  const [gx, rowMajor] = await Promise.all([x.to(gpu), w.to(gpu)]);
  const gw = v === 'packed' ? packLinearWeight(rowMajor) : rowMajor;
  if (v === 'packed') expect(packingOf(gw)).toBeDefined();
  const y = linearWith(gx, gw, v === 'packed' ? {} : v);
  expect(y.shape).toEqual([m, n]);
  const expected = linearReference(cpuFloats(x), cpuFloats(w), m, n, k);
  expectClose(await y.toArray(), expected, {
    ...tolerance(k),
    what: `linear ${m}x${n}x${k} ${xDtype} x, ${dtype} W${v === 'packed' ? ', packed' : Object.keys(v).length ? `, ${JSON.stringify(v)}` : ''}`,
  });
  for (const t of [gx, gw, rowMajor, y]) t.dispose();
}

describe('linear on the CPU', () => {
  it('computes x @ W^T with W stored [N, K]', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const w = tensor([1, 0, 0, 0, 1, 1], [2, 3]);
    const y = linear(x, w);
    expect(y.shape).toEqual([2, 2]);
    expect([...(await y.toArray())]).toEqual([1, 5, 4, 11]);
  });
  it('keeps leading dims: [2, 3, K] -> [2, 3, N]', () => {
    const y = linear(randn([2, 3, 4]), randn([5, 4]));
    expect(y.shape).toEqual([2, 3, 5]);
  });
  it('rejects a K mismatch, naming the op, both shapes and the dims', () => {
    const x = randn([2, 3] as number[]);
    const w = randn([4, 5] as number[]);
    expect(() => linear(x, w)).toThrow('linear: x [2, 3] has K = 3 but W [4, 5] has K = 5');
  });
});

// Variants forced on whatever adapter runs the tests, so the real-GPU kernels are checked on lavapipe too.
const GEMVS: GemvVariant[] = [
  { workgroupSize: 8, rows: 4, reduce: 'subgroup' },
  { workgroupSize: 128, rows: 4, reduce: 'subgroup', unroll: 2 },
  { workgroupSize: 8, rows: 2, reduce: 'shared', unroll: 3 },
  { workgroupSize: 64, rows: 3, reduce: 'shared' },
];
const GEMMS: GemmVariant[] = [
  { kind: 'register', tileM: 8, tileN: 4, groupN: 8, groupM: 1, shareX: true },
  { kind: 'register', tileM: 3, tileN: 1, groupN: 8, groupM: 1, shareX: true },
  { kind: 'register', tileM: 4, tileN: 4, groupN: 8, groupM: 1 },
  { kind: 'register', tileM: 2, tileN: 3, groupN: 4, groupM: 2 },
  { kind: 'tiled', tileM: 4, tileN: 4, groupN: 16, groupM: 16 },
  NAIVE_GEMM,
  // x in groups of 4 interleaved rows (prefill on software adapters)
  { kind: 'register', tileM: 16, tileN: 4, groupN: 8, groupM: 1, shareX: true, interleaveX: true },
  { kind: 'register', tileM: 4, tileN: 2, groupN: 8, groupM: 1, shareX: true, interleaveX: true },
];

/**
 * Whether a device can run what a test forces: packed weights, the shareX kernel and subgroup reductions
 * need `subgroups` (Firefox's WebGPU has none; `linear` never picks them there).
 */
function runs(device: WebGpuDevice, v: LinearVariants | 'packed'): boolean {
  if (device.caps.subgroups) return true;
  return v !== 'packed' && v.gemm?.shareX !== true && v.gemv?.reduce !== 'subgroup';
}

describe('linear on WebGPU matches the f64 reference', () => {
  let gpu: WebGpuDevice | undefined;
  let small: WebGpuDevice | undefined;
  // 1 KiB bindings on the small device: W, x and out are split into many ranges, most starting at
  // unaligned rows.
  useTestDevices([{}, { maxStorageBindingSize: 1024 }], (d) => ([gpu, small] = d));

  // [M, N, K]: 1, odd, primes, K both a multiple of 8 (vector loads) and not (element loads), M across
  // the GEMV/GEMM switch at 8, sizes that are not multiples of any tile (4, 16, 32, 64).
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 37, 24],
    [3, 13, 13],
    [8, 67, 64],
    [9, 5, 40],
    [33, 71, 31],
    [70, 131, 96],
  ];
  for (const [m, n, k] of shapes) {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      it(`[${m}, ${k}] x [${n}, ${k}] ${dtype}`, async ({ skip }) => {
        if (!gpu) return skip('no WebGPU adapter');
        await check(gpu, m, n, k, dtype);
      });
    }
  }

  it('every GEMV variant, every dtype', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    for (const gemv of GEMVS) {
      // Every dtype once (the chunk layouts), then the scalar path, more sums than invocations (M = 5,
      // 4 rows) and a K with unrolled iterations and a remainder in one dtype each. (M = 8 GEMV kernels
      // take 5-15 s each to compile on lavapipe, which runs decode through the register kernel instead.)
      const cases: [number, number, number, 'f32' | 'bf16' | 'f16'][] = [
        [1, 9, 16, 'f32'],
        [1, 9, 16, 'bf16'],
        [1, 9, 16, 'f16'],
        [2, 11, 21, 'bf16'],
        [5, 5, 72, 'bf16'],
        [1, 3, 2056, 'f16'],
      ];
      for (const [m, n, k, dtype] of cases) await check(gpu, m, n, k, dtype, { gemv, gemvMaxRows: 8 });
    }
  });

  it('every GEMM variant (also for decode rows), every dtype', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    for (const gemm of GEMMS) {
      for (const [m, n, k] of [
        [1, 13, 16],
        [9, 7, 5],
        [37, 70, 48],
        [65, 19, 33],
      ] as const) {
        for (const dtype of ['f32', 'bf16', 'f16'] as const)
          await check(gpu, m, n, k, dtype, { gemm, gemvMaxRows: 0 });
      }
    }
  });

  it('splits W, x and out over bindings, with blocks starting at awkward rows', async ({ skip }) => {
    if (!small) return skip('no WebGPU adapter');
    // f32 K = 24: 96-byte rows, 8 rows per 256-byte period, so W blocks are aligned; bf16 K = 13: 26-byte
    // rows start at any offset; out rows of N = 100 (400 bytes) go one per binding.
    for (const [m, n, k, dtype] of [
      [1, 100, 24, 'f32'],
      [3, 100, 13, 'bf16'],
      [12, 45, 13, 'f16'],
      [20, 37, 8, 'bf16'],
      [1, 61, 16, 'bf16'],
    ] as const) {
      await check(small, m, n, k, dtype);
      await check(small, m, n, k, dtype, { gemm: GEMMS[4]!, gemv: GEMVS[1]!, gemvMaxRows: 8 });
      await check(small, m, n, k, dtype, { gemm: GEMMS[0]!, gemvMaxRows: 0 });
    }
  });

  // The software kernel's layout (gpu/packing.ts), forced on any adapter: N around the 32-row group
  // (1, 31, 32, 33, 100: padding rows), M across 8, K = 8 (one word per row in 16-bit), 24, 2056.
  it('packed weights, every dtype, whole and split bindings', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    for (const [m, n, k] of [
      [1, 1, 8],
      [1, 33, 24],
      [3, 31, 16],
      [8, 32, 2056],
      [9, 100, 24],
      [33, 65, 8],
    ] as const) {
      for (const dtype of ['f32', 'bf16', 'f16'] as const) await check(gpu, m, n, k, dtype, 'packed');
    }
    // 1 KiB bindings hold 2 groups of 16-byte rows (bf16 K = 8), one of 32-byte rows (f32 K = 8).
    for (const [m, n, k, dtype] of [
      [1, 100, 8, 'bf16'],
      [12, 70, 8, 'f32'],
    ] as const) {
      await check(small, m, n, k, dtype, 'packed');
    }
  });

  // The kernels widen a 16-bit x as they load it (exactly), so the reference is the same f64 sum of the
  // stored x values and the same tolerance applies.
  it('x in f16 and bf16, every kernel, whole and split bindings', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    for (const xDtype of ['f16', 'bf16'] as const) {
      for (const [m, n, k] of [
        [1, 37, 24],
        [3, 13, 13],
        [9, 70, 64],
      ] as const) {
        for (const w of ['f32', 'bf16'] as const) {
          await check(gpu, m, n, k, w, {}, xDtype);
          await check(gpu, m, n, k, w, { gemv: GEMVS[1]!, gemvMaxRows: 8, gemm: GEMMS[4]! }, xDtype);
          await check(gpu, m, n, k, w, { gemm: GEMMS[0]!, gemvMaxRows: 0 }, xDtype);
          await check(gpu, m, n, k, w, { gemm: GEMMS[3]!, gemvMaxRows: 0 }, xDtype);
          if (k % 8 === 0) await check(gpu, m, n, k, w, 'packed', xDtype);
          await check(small, m, n, k, w, {}, xDtype);
        }
      }
    }
  });

  // RMSNorm fused into the kernel: x times g as loaded, the squares summed on the way, one scale per result.
  // Against the two references in sequence: the linear sum's f32 error (as above) plus the scale's, which is
  // rmsnorm's (rtol 1e-5, see rmsnorm.test.ts).
  it('with an RMSNorm fused in: every kernel that fuses it, and the fallback for the others', async ({
    skip,
  }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    // [M, N, K, W dtype, kernel, dispatches on the whole-binding device: 1 fused, 2 for rmsnorm + GEMM]
    const cases: [number, number, number, 'f32' | 'bf16' | 'f16', LinearVariants | 'packed', number][] = [
      [1, 37, 24, 'bf16', {}, 1],
      [3, 13, 16, 'f32', { gemv: GEMVS[0]!, gemvMaxRows: 8 }, 1],
      [5, 9, 72, 'f16', { gemv: GEMVS[1]!, gemvMaxRows: 8 }, 1],
      [2, 11, 21, 'bf16', { gemv: GEMVS[2]!, gemvMaxRows: 8 }, 1],
      [1, 7, 13, 'f32', { gemv: GEMVS[3]!, gemvMaxRows: 8 }, 1],
      [9, 40, 64, 'bf16', { gemm: GEMMS[0]!, gemvMaxRows: 0 }, 1],
      [8, 70, 2056, 'bf16', 'packed', 1],
      [33, 65, 8, 'f32', 'packed', 1],
      [12, 19, 24, 'f16', { gemm: GEMMS[4]!, gemvMaxRows: 0 }, 2], // tiled
      [3, 5, 16, 'bf16', { gemm: GEMMS[2]!, gemvMaxRows: 0 }, 2], // register without shareX
    ];
    for (const [device, name] of [
      [gpu, 'whole'],
      [small, 'split'],
    ] as const) {
      for (const [m, n, k, dtype, v, dispatches] of cases) {
        if (device === small && (v === 'packed' || k > 64)) continue; // packed groups exceed 1 KiB there
        if (!runs(device, v)) continue;
        const x = randn([m, k], { seed: m + k });
        const g = randn([k], { seed: k, dtype: 'bf16' });
        const w = randn([n, k], { seed: n, dtype });
        const expected = linearReference(
          rmsnormReference(cpuFloats(x), cpuFloats(g), 1e-5),
          cpuFloats(w),
          m,
          n,
          k,
        );
        const rowMajor = await w.to(device);
        const weight = v === 'packed' ? packLinearWeight(rowMajor) : rowMajor;
        const [gx, gg] = await Promise.all([x.to(device), g.to(device)]);
        const before = device.stats.dispatches;
        const forced = { ...(v === 'packed' ? {} : v), fuseNorm: true }; // decode rows only by default
        const y = linearWith(gx, weight, forced, undefined, { norm: { weight: gg } });
        // The default kernel of a software adapter without subgroups (Firefox) cannot fold the norm.
        const unfoldable =
          v !== 'packed' && !v.gemm && !v.gemv && device.caps.software && !device.caps.subgroups;
        if (device === gpu) expect(device.stats.dispatches - before).toBe(unfoldable ? 2 : dispatches);
        expectClose(await y.toArray(), expected, {
          atol: tolerance(k).atol,
          rtol: 1e-5,
          what: `rmsnorm + linear ${m}x${n}x${k} ${dtype} ${name} ${JSON.stringify(v)}`,
        });
        for (const t of [gx, gg, rowMajor, weight, y]) t.dispose();
      }
    }
  });

  // Where the norm is folded by default: decode rows, and on software adapters only for weights of at most
  // 4096 rows (above that the folded kernel reloads g in every one of its N / 32 workgroups, which costs
  // more than a separate rmsnorm dispatch). Tolerance as above.
  it('folds the RMSNorm by default for decode rows, on software adapters only into small weights', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const k = 16;
    const x = randn([1, k], { seed: 1 });
    const g = randn([k], { seed: 2, dtype: 'bf16' });
    const [gx, gg] = await Promise.all([x.to(gpu), g.to(gpu)]);
    for (const n of [4096, 4097]) {
      const w = randn([n, k], { seed: n, dtype: 'bf16' });
      const weight = await w.to(gpu);
      const before = gpu.stats.dispatches;
      const y = linear(gx, weight, { norm: { weight: gg } });
      // (the software kernel folds it only where it shares x through subgroups)
      const folded = !gpu.caps.software || (n <= 4096 && gpu.caps.subgroups);
      expect(gpu.stats.dispatches - before, `N = ${n}`).toBe(folded ? 1 : 2);
      const expected = linearReference(
        rmsnormReference(cpuFloats(x), cpuFloats(g), 1e-5),
        cpuFloats(w),
        1,
        n,
        k,
      );
      expectClose(await y.toArray(), expected, { ...tolerance(k), what: `N = ${n}` });
      for (const t of [weight, y]) t.dispose();
    }
    for (const t of [gx, gg]) t.dispose();
  });

  // SwiGLU computed as x is loaded: x is [M, 2K]. Against the references in sequence: the product's f32
  // error (as above, |silu(g) u| ~ 1) plus swiglu's own (rtol 1e-5 per value, see activations.test.ts),
  // which adds up over K terms like a random walk: 4 sqrt(K) 1e-5.
  it('with SwiGLU fused into the input: every kernel, f32 and f16 x, whole and split, accumulating', async ({
    skip,
  }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const cases: [number, number, number, 'f32' | 'f16', LinearVariants | 'packed'][] = [
      [1, 37, 24, 'f32', {}],
      [3, 13, 16, 'f16', { gemv: GEMVS[0]!, gemvMaxRows: 8 }],
      [5, 9, 72, 'f32', { gemv: GEMVS[1]!, gemvMaxRows: 8 }],
      [2, 11, 21, 'f32', { gemv: GEMVS[2]!, gemvMaxRows: 8 }],
      [9, 40, 64, 'f16', { gemm: GEMMS[0]!, gemvMaxRows: 0 }],
      [12, 19, 24, 'f32', { gemm: GEMMS[4]!, gemvMaxRows: 0 }],
      [3, 5, 13, 'f32', { gemm: GEMMS[3]!, gemvMaxRows: 0 }],
      [8, 70, 2056, 'f32', 'packed'],
    ];
    for (const [device, name] of [
      [gpu, 'whole'],
      [small, 'split'],
    ] as const) {
      for (const [m, n, k, xDtype, v] of cases) {
        if (device === small && (v === 'packed' || k > 64)) continue; // packed groups exceed 1 KiB there
        if (!runs(device, v)) continue;
        const x = randn([m, 2 * k], { seed: m + k, dtype: xDtype });
        const w = randn([n, k], { seed: n, dtype: 'bf16' });
        const expected = linearReference(swigluPackedReference(cpuFloats(x), k), cpuFloats(w), m, n, k);
        const rowMajor = await w.to(device);
        const weight = v === 'packed' ? packLinearWeight(rowMajor) : rowMajor;
        const gx = await x.to(device);
        // Fused (forced: software adapters run swigluPacked first by default, as swigluLinear does below).
        const fused = { ...(v === 'packed' ? {} : v), fuseSwiglu: true };
        const y = linearWith(gx, weight, fused, undefined, { swiglu: true });
        expect(y.shape).toEqual([m, n]);
        const tol = { atol: tolerance(k).atol + 4 * Math.sqrt(k) * 1e-5, rtol: 1e-5 };
        const what = `swiglu + linear ${m}x${n}x${k} ${xDtype} x ${name} ${JSON.stringify(v)}`;
        expectClose(await y.toArray(), expected, { ...tol, what });
        // Accumulating into a residual, through the typed entry point (fused where the adapter fuses).
        const acc = await randn([m, n], { seed: 5 }).to(device);
        const before = await acc.toArray();
        swigluLinear(gx, weight, acc);
        expectClose(
          await acc.toArray(),
          expected.map((e, i) => e + before[i]!),
          { ...tol, what: `${what}, accumulated` },
        );
        for (const t of [gx, rowMajor, weight, y, acc]) t.dispose();
      }
    }
  });

  it('K = 8192 GEMV and an lm_head GEMV (128256 x 2048 bf16, 525 MB: over one 128 MiB binding)', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    await check(gpu, 1, 67, 8192, 'bf16');
    await check(gpu, 3, 19, 8192, 'f32');
    const [n, k] = [128256, 2048];
    const w = tiledBf16(n, k);
    const x = randn([1, k], { seed: 5 });
    const [gx, gw] = await Promise.all([x.to(gpu), w.to(gpu)]);
    const y = linear(gx, gw);
    const expected = linearReference(cpuFloats(x), cpuFloats(w), 1, n, k);
    // Weights are uniform in [-1, 1) (rms 1/sqrt(3)), x is N(0, 1): terms have rms 1/sqrt(3).
    expectClose(await y.toArray(), expected, { ...tolerance(k, 0.6), what: 'lm_head' });
    // Packed, as software drivers hold it: 4 ranges of 1024 row groups on a 128 MiB binding limit.
    if (runs(gpu, 'packed')) {
      const packed = packLinearWeight(gw);
      const yp = linear(gx, packed);
      expectClose(await yp.toArray(), expected, { ...tolerance(k, 0.6), what: 'packed lm_head' });
      for (const t of [packed, yp]) t.dispose();
    }
    for (const t of [gx, gw, y]) t.dispose();
  });

  describe('linearAccumulate: acc += x @ W^T in place', () => {
    it('adds to the accumulator on the CPU and checks its shape', async () => {
      const acc = tensor([10, 20, 30, 40], [2, 2]);
      linearAccumulate(acc, tensor([1, 2, 3, 4], [2, 2]), tensor([1, 0, 0, 1], [2, 2]));
      expect([...(await acc.toArray())]).toEqual([11, 22, 33, 44]);
      const wrong = tensor([0, 0, 0], [1, 3]) as Tensor;
      expect(() => linearWith(tensor([1, 2], [1, 2]), tensor([1, 0, 0, 1], [2, 2]), {}, wrong)).toThrow(
        'linearAccumulate: acc [1, 3] f32 must be f32 [1, 2]',
      );
    });

    // GEMV rows (1, 3), the GEMM path (17 rows), and bindings split into row blocks (the small device).
    for (const [m, n, k] of [
      [1, 33, 64],
      [3, 130, 72],
      [17, 65, 40],
    ] as const) {
      it(`[${m}, ${k}] @ [${n}, ${k}]^T added to a random accumulator, whole and split bindings`, async ({
        skip,
      }) => {
        if (!gpu || !small) return skip('no WebGPU adapter');
        const x = randn([m, k], { seed: m });
        const w = randn([n, k], { seed: n, dtype: 'bf16' });
        const acc0 = randn([m, n], { seed: 3 });
        const product = linearReference(cpuFloats(x), cpuFloats(w), m, n, k);
        const expected = cpuFloats(acc0).map((v, i) => v + product[i]!);
        for (const [device, pack] of [
          [gpu, false],
          [small, false],
          [gpu, true],
        ] as const) {
          if (pack && !runs(device, 'packed')) continue;
          const acc = await acc0.to(device);
          const weight = await w.to(device);
          linearAccumulate(acc, await x.to(device), pack ? packLinearWeight(weight) : weight);
          // As linear's own tests: f32 sums of k products (|x w| ~ 1/sqrt(k)..1) against an f64 reference,
          // plus one f32 add: within a few ulps of the magnitudes involved.
          expectClose(await acc.toArray(), expected, {
            atol: 1e-5,
            rtol: 1e-5,
            what: `acc on ${device.description}${pack ? ', packed W' : ''}`,
          });
        }
      });
    }
  });
});

/**
 * A big bf16 weight made fast: row `i` is a window of a random table starting at `i * 7919`, so rows
 * differ (randn of 262M values would take most of the test's time budget).
 */
function tiledBf16(n: number, k: number): Tensor<[number, number], 'bf16'> {
  const rng = new Rng(11);
  const table = new Uint16Array(65537);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < table.length; i++) {
    f[0] = rng.uniform(-1, 1);
    table[i] = u[0]! >>> 16; // truncation is fine: any bf16 value will do
  }
  const data = new Uint16Array(n * k);
  for (let i = 0; i < n; i++) {
    const start = (i * 7919) % table.length;
    for (let j = 0; j < k; j++) data[i * k + j] = table[(start + j) % table.length]!;
  }
  return fromArray(data, [n, k], { dtype: 'bf16' });
}
