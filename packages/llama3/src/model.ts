/**
 * The Llama 3 forward pass, written with the op set and nothing else:
 *
 *   x = embed(tokens)
 *   for each layer:  x = x + Attention(RMSNorm(x));  x = x + SwiGLU(RMSNorm(x))
 *   logits = RMSNorm(x) @ W_out^T
 *
 * Shapes: S = tokens in this call, D = hidden size, Hq/Hkv = query/key-value heads, Dh = head size,
 * F = feed-forward width, V = vocabulary.
 * @module
 */
import { type Device, keep, scope, Tensor, tensor } from '@proj/core';
import {
  add,
  argmax,
  attention,
  embedding,
  type GpuGraph,
  KvCache,
  linear,
  linearAccumulate,
  narrow,
  type OutDType,
  type RopeTables,
  rmsnorm,
  ropeQkv,
  ropeQkvAttention,
  ropeTables,
  swigluLinear,
  swigluPacked,
  type TokenSampler,
  WebGpuDevice,
} from '@proj/ops';
import type { LlamaConfig } from './config.js';
import { ropeInverseFrequencies } from './rope-frequencies.js';
import { disposeWeights, type LayerWeights, type LlamaWeights } from './weights.js';

/**
 * Receives named intermediate tensors (the fixture names: `embed`, `layer0.q_rope`, ...). Each is a copy
 * that the callback owns: read it and `dispose()` it.
 */
export type TraceFn = (name: string, t: Tensor) => void;

/** Hands `trace` a copy of `t` that outlives the scope that computes it. */
function emit(trace: TraceFn | undefined, name: string, t: Tensor): void {
  if (trace) trace(name, keep(narrow(t, 0, 0, t.shape[0]!)));
}

/** Options of {@link Llama.forward}. */
export interface ForwardOptions {
  /** Compute logits for every position (`'all'`) or only the last one (`'last'`, the default: decoding needs no more). */
  logits?: 'all' | 'last';
  /** Receives intermediate tensors, for checks against a reference and for the walkthrough. */
  trace?: TraceFn;
}

/** The most prompt tokens {@link Llama.prefill} runs in one forward pass, by default. */
export const PREFILL_CHUNK = 512;

/** Options of the {@link Llama} constructor. */
export interface LlamaOptions {
  /**
   * The dtype of the activations between ops (default `'f32'`). `'f16'` stores the normed inputs, the
   * projections, q, the attention output and the SwiGLU output in f16; the residual stream, the KV cache
   * and the logits stay f32. Ops compute in f32 and round once on store, except prefill's matrix products
   * on GPUs, which multiply their f16 inputs in half precision (`GemmVariant.f16` in `@proj/ops`: each
   * 16-step slice of K summed in f16, the slices in f32). Needs `shader-f16` on WebGPU (an error says so
   * otherwise); on the CPU the references round the same way.
   */
  compute?: OutDType;
}

/** The KV caches of every layer, and how many positions they hold. */
export class LlamaCache {
  /** One cache per layer. */
  readonly layers: KvCache[];
  /** Allocates `maxSeq` positions for every layer on `device`. */
  constructor(config: LlamaConfig, device: Device, maxSeq: number) {
    this.layers = Array.from(
      { length: config.layers },
      () => new KvCache(device, { maxSeq, kvHeads: config.kvHeads, headDim: config.headDim }),
    );
  }
  /** Positions already processed (the next token's position). */
  get length(): number {
    return this.layers[0]?.length ?? 0;
  }
  /** Positions the cache can hold. */
  get capacity(): number {
    return this.layers[0]?.maxSeq ?? 0;
  }
  /** @internal The replayable decode step of this cache (see {@link Llama.greedyStep}). */
  decodeGraph: DecodeGraph | undefined;
  /** Forgets every position (keeps the memory). */
  reset(): void {
    for (const c of this.layers) c.reset();
    this.dropDecodeGraph();
  }
  /** Forgets the positions from `length` on: the next tokens go at `length`. */
  truncate(length: number): void {
    for (const c of this.layers) c.truncate(length);
    this.dropDecodeGraph();
  }
  /** Frees the cache memory. */
  dispose(): void {
    for (const c of this.layers) c.dispose();
    this.dropDecodeGraph();
  }
  /** @internal */
  dropDecodeGraph(): void {
    this.decodeGraph?.graph.dispose();
    this.decodeGraph = undefined;
  }
}

/**
 * A decode step captured at `position` reading and writing `ids`, choosing with `sampler` (greedy without);
 * `checked` once it may replay.
 */
interface DecodeGraph {
  graph: GpuGraph;
  position: number;
  ids: Tensor;
  sampler: TokenSampler | undefined;
  checked: boolean;
}

/**
 * A Llama 3 model on a device: config, weights and RoPE tables. `C` is the config's type: a preset (or any
 * literal config) makes the vocabulary size of the logits a literal in their type, so code downstream gets
 * compile-time shape checks.
 */
export class Llama<C extends LlamaConfig = LlamaConfig> {
  /** cos/sin of every position up to {@link Llama.contextLength}, computed once. */
  readonly #rope: RopeTables;
  /** The dtype of the activations between ops (see {@link LlamaOptions.compute}). */
  readonly compute: OutDType;

  /**
   * @param contextLength positions the RoPE tables (and so the caches) cover; at most `config.maxPositions`.
   */
  constructor(
    readonly config: C,
    readonly weights: LlamaWeights,
    readonly device: Device,
    readonly contextLength: number = Math.min(config.maxPositions, 8192),
    options: LlamaOptions = {},
  ) {
    if (contextLength > config.maxPositions) {
      throw new Error(
        `Llama: contextLength ${contextLength} is over the model's ${config.maxPositions} positions`,
      );
    }
    this.compute = options.compute ?? 'f32';
    if (this.compute === 'f16' && device instanceof WebGpuDevice && !device.caps.f16) {
      throw new Error(
        `Llama: compute 'f16' needs the shader-f16 feature, which this adapter lacks; use 'f32'`,
      );
    }
    this.#rope = ropeTables(ropeInverseFrequencies(config), contextLength, device);
  }

  /** A KV cache for `maxSeq` positions (default: the whole context). */
  createCache(maxSeq: number = this.contextLength): LlamaCache {
    if (maxSeq > this.contextLength)
      throw new Error(`createCache: ${maxSeq} positions is over the context length ${this.contextLength}`);
    return new LlamaCache(this.config, this.device, maxSeq);
  }

  /**
   * Runs `ids` at positions `[cache.length, cache.length + S)`, appending their keys and values to the
   * cache; returns logits `[S, V]` (or `[1, V]` for the last position). `ids` may also be an i32 `[S]`
   * tensor on the model's device, such as the `argmax` of the previous logits: then the step is recorded
   * without waiting for the id to come back (greedy decoding records the next step while the device runs
   * this one). Ids on the device are not checked against the vocabulary (an `argmax` is always inside).
   */
  forward(
    ids: readonly number[] | Tensor<readonly [number], 'i32'>,
    cache: LlamaCache,
    options: ForwardOptions = {},
  ): Tensor<readonly [number, C['vocabSize']], 'f32'> {
    const w = this.weights;
    const onDevice = ids instanceof Tensor;
    if (onDevice && (ids.rank !== 1 || ids.dtype !== 'i32' || ids.device !== this.device)) {
      throw new Error(`forward: token ids ${ids} must be an i32 [S] tensor on the model's device`);
    }
    const S = onDevice ? ids.shape[0] : ids.length;
    const start = cache.length;
    this.#checkTokens('forward', cache, S, onDevice ? [] : ids); // ids on the device: reading them would stall
    const trace = options.trace;
    let x: Tensor = scope(() => {
      const tokens = onDevice ? ids : tensor(ids, [S], { dtype: 'i32', device: this.device }); // [S]
      const e = embedding(tokens, w.embedding); // [S] -> [S, D]
      emit(trace, 'embed', e);
      return e;
    });
    for (const [i, layer] of w.layers.entries()) {
      const next = scope(() => this.#block(x, layer, cache.layers[i]!, start, i === 0 ? trace : undefined));
      if (next !== x) x.dispose(); // the untraced block updates x in place and returns it
      x = next;
      if (i === 0) emit(trace, 'layer0.out', x);
    }
    return scope(() => {
      const last = options.logits === 'all' || S === 1 ? x : narrow(x, 0, S - 1, 1); // [S, D] or [1, D]
      // RMSNorm(last) @ output^T: [S, D] @ [V, D]^T -> [S, V], f32 whatever the compute dtype
      const logits = this.#normedLinear(last, w.norm, w.output, 'f32', trace, 'final_norm_out');
      x.dispose();
      return logits as Tensor<readonly [number, C['vocabSize']], 'f32'>;
    });
  }

  /**
   * Runs a prompt through the model in passes of at most `chunk` tokens (default
   * {@link PREFILL_CHUNK}), each appending its keys and values to `cache`, and returns the logits of the
   * last position, `[1, V]`: what one `forward` of the whole prompt returns (up to the order of the sums in
   * the matrix products), with the activations of `chunk` tokens alive at a time instead of the whole
   * prompt's. In one pass the MLP's `[S, 2F]` alone is 64 KiB a token for the 1B model (112 KiB for 8B):
   * 2 GiB for a prompt of 32768 tokens. The ids and the cache's room are checked before the first pass, so
   * a bad prompt leaves the cache as it was.
   */
  prefill(
    ids: readonly number[],
    cache: LlamaCache,
    chunk: number = PREFILL_CHUNK,
  ): Tensor<readonly [1, C['vocabSize']], 'f32'> {
    if (!(Number.isInteger(chunk) && chunk >= 1))
      throw new Error(`prefill: chunk must be a positive integer, got ${chunk}`);
    this.#checkTokens('prefill', cache, ids.length, ids);
    let logits: Tensor<readonly [number, C['vocabSize']], 'f32'> | undefined;
    for (let at = 0; at < ids.length; at += chunk) {
      logits?.dispose();
      logits = this.forward(ids.slice(at, at + chunk), cache); // [1, V]: each pass's last position
    }
    return logits as Tensor<readonly [1, C['vocabSize']], 'f32'>;
  }

  /** Throws naming `op` unless `count` tokens (at least one) fit in `cache` and `ids` are in the vocabulary. */
  #checkTokens(op: string, cache: LlamaCache, count: number, ids: readonly number[] = []): void {
    const vocab = this.config.vocabSize;
    if (count === 0) throw new Error(`${op}: no tokens`);
    if (cache.length + count > cache.capacity) {
      throw new Error(
        `${op}: ${cache.length} cached + ${count} new tokens exceed the cache's ${cache.capacity} positions`,
      );
    }
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab)
        throw new Error(`${op}: token id ${id} is outside the vocabulary [0, ${vocab})`);
    }
  }

  /**
   * One greedy decode step: runs the token in `ids` (an i32 `[1]` tensor on the model's device) at the
   * next position of `cache` and writes the most likely next token into `ids`, where the next step reads
   * it. Nothing comes back to the host: read `ids` for the token (in queue order, so a read issued before
   * the next step sees this step's token).
   *
   * On WebGPU the step is captured once, checked on the next step, and from then on replayed
   * (`WebGpuDevice.capture`): the same kernels on the same buffers, bit for bit, without running the ops'
   * JavaScript, which on a fast GPU costs the host about as much as the step costs the GPU. The step is
   * captured again where its dispatches change (attention splits the keys into more chunks as the cache
   * grows), with a different `ids` tensor or sampler, or after `cache.reset()`.
   */
  greedyStep(ids: Tensor<readonly [1], 'i32'>, cache: LlamaCache): void {
    this.#decodeStep('greedyStep', ids, cache, undefined);
  }

  /**
   * {@link Llama.greedyStep}, drawing the next token with `sampler` (a `TokenSampler` on the model's device,
   * which keeps its draw counter and the seen tokens there) instead of taking the most likely one.
   */
  sampleStep(ids: Tensor<readonly [1], 'i32'>, cache: LlamaCache, sampler: TokenSampler): void {
    this.#decodeStep('sampleStep', ids, cache, sampler);
  }

  #decodeStep(
    name: string,
    ids: Tensor<readonly [1], 'i32'>,
    cache: LlamaCache,
    sampler: TokenSampler | undefined,
  ): void {
    const step = () =>
      scope(() => {
        const logits = this.forward(ids, cache); // [1, V] -> the next token's id, in place
        if (sampler) sampler.sample(logits, ids);
        else argmax(logits, { into: ids });
      });
    if (!(this.device instanceof WebGpuDevice)) {
      step();
      return;
    }
    // A replay binds the buffers the capture bound, without the ops' checks that their tensors still live.
    const gone = this.disposed ? 'model' : ids.disposed ? 'ids tensor' : sampler?.disposed ? 'sampler' : '';
    if (gone) throw new Error(`${name}: the ${gone} has been disposed`);
    const position = cache.length;
    const d = cache.decodeGraph;
    const same = d && d.ids === ids && d.sampler === sampler;
    if (same && d.checked && d.graph.replay(position - d.position)) {
      for (const layer of cache.layers) layer.reserve(1); // what the replayed ropeQkv would have done
      return;
    }
    if (same && !d.checked && position === d.position + 1) {
      d.checked = d.graph.check(step, 1); // runs the step either way
      if (!d.checked) cache.dropDecodeGraph();
      return;
    }
    cache.dropDecodeGraph();
    cache.decodeGraph = { graph: this.device.capture(step), position, ids, sampler, checked: false };
  }

  /**
   * One transformer block: `x + Attention(RMSNorm(x))`, then `+ SwiGLU(RMSNorm(x))`. Returns the new
   * residual stream, which is `x` itself updated in place unless tracing.
   */
  #block(x: Tensor, w: LayerWeights, kv: KvCache, start: number, trace?: TraceFn): Tensor {
    const { heads: Hq, headDim: Dh } = this.config;
    const S = x.shape[0]!;
    const out = { out: this.compute }; // activations' dtype; x (the residual stream) stays f32

    // Attention, with the keys and values of every earlier position from the cache.
    // RMSNorm(x) @ wqkv^T: [S, D] @ [(Hq + 2 Hkv) Dh, D]^T -> [S, (Hq + 2 Hkv) Dh]
    const qkv = this.#normedLinear(x, w.attentionNorm, w.wqkv, this.compute, trace, 'layer0.attn_norm_out');
    // q, k rotated; k and v -> cache rows [start, start + S); attention over rows [0, start + S): [S, Hq, Dh]
    const a = trace
      ? this.#tracedAttention(qkv, kv, start, trace)
      : ropeQkvAttention(qkv, this.#rope, kv, { heads: Hq, ...out });
    const r = residual(x, a.reshape([S, Hq * Dh]), w.wo, trace && 'layer0.attn_out'); // x + a @ wo^T: [S, D]

    emit(trace, 'layer0.attn_residual', r);

    // Feed-forward: down(silu(gate(n)) * up(n)) with n = RMSNorm(r), gate and up as one matmul.
    const gateUp = this.#normedLinear(r, w.ffnNorm, w.wGateUp, this.compute, trace, 'layer0.ffn_norm_out'); // [S, 2F]
    if (!trace) {
      swigluLinear(gateUp, w.wDown, r); // r += (silu(gate) * up) @ w_down^T, SwiGLU done as w_down's kernel loads it
      return r;
    }
    const g = swigluPacked(gateUp, out); // [S, 2F] -> [S, F]
    return residual(r, g, w.wDown, 'layer0.ffn_out'); // r + g @ w_down^T: [S, D]

    /**
     * `x + input @ weight^T`. Fused into the projection (x updated in place, no add kernel) unless the
     * projection itself must be traced: then it is computed on its own and emitted as `name`.
     */
    function residual(x: Tensor, input: Tensor, weight: Tensor, name: string | false | undefined): Tensor {
      if (!name) {
        linearAccumulate(x, input, weight);
        return x;
      }
      const projected = linear(input, weight);
      emit(trace, name, projected);
      return add(x, projected);
    }
  }

  /** {@link ropeQkvAttention} as its two ops, with q, k and v emitted as the fixtures name them. */
  #tracedAttention(qkv: Tensor, kv: KvCache, start: number, trace: TraceFn): Tensor {
    const S = qkv.shape[0]!;
    const out = { out: this.compute };
    const q = ropeQkv(qkv, this.#rope, kv, { heads: this.config.heads, ...out }); // [S, Hq, Dh]
    const k = narrow(kv.k, 0, start, S); // [S, Hkv, Dh], as stored in the cache
    const v = narrow(kv.v, 0, start, S);
    for (const [name, t] of Object.entries({ q_rope: q, k_rope: k, v })) emit(trace, `layer0.${name}`, t);
    return attention(q, kv.k, kv.v, { offset: start, length: kv.length, ...out }); // [S, Hq, Dh]
  }

  /**
   * `RMSNorm(x; g) @ W^T`: one kernel where `linear` can fuse the norm, so the normalised x is never written;
   * when tracing, RMSNorm runs on its own (in the compute dtype) so that its output can be emitted as `name`.
   */
  #normedLinear(
    x: Tensor,
    g: Tensor,
    w: Tensor,
    out: OutDType,
    trace: TraceFn | undefined,
    name: string,
  ): Tensor {
    const eps = this.config.rmsNormEps;
    if (!trace) return linear(x, w, { out, norm: { weight: g, eps } });
    const n = rmsnorm(x, g, eps, { out: this.compute }); // [S, D]
    emit(trace, name, n);
    return linear(n, w, { out });
  }

  /** Frees the weights and tables. */
  dispose(): void {
    disposeWeights(this.weights);
    this.#rope.cos.dispose();
    this.#rope.sin.dispose();
  }

  /** Whether {@link Llama.dispose} has run (its weights' buffers may since serve other tensors). */
  get disposed(): boolean {
    return this.#rope.cos.disposed;
  }
}
