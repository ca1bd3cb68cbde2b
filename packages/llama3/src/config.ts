/**
 * The model's hyper-parameters, read from a Hugging Face `config.json` or from Meta's `params.json`.
 * @module
 */

/** Llama 3.1's RoPE frequency scaling (`rope_scaling` with `rope_type: "llama3"`), used by 3.1 and 3.2. */
export interface Llama3RopeScaling {
  /** How much longer the context is than in pre-training (8 for 3.1, 32 for 3.2 1B/3B). */
  readonly factor: number;
  /** Wavelengths longer than `original / low_freq_factor` are divided by `factor`. */
  readonly lowFreqFactor: number;
  /** Wavelengths shorter than `original / high_freq_factor` are kept. */
  readonly highFreqFactor: number;
  /** The pre-training context length the scaling is relative to (8192). */
  readonly originalMaxPositions: number;
}

/** A Llama 3 / 3.1 / 3.2 architecture. */
export interface LlamaConfig {
  /** Width of the residual stream (`dim`). */
  readonly hiddenSize: number;
  /** Number of transformer blocks. */
  readonly layers: number;
  /** Query heads. */
  readonly heads: number;
  /** Key/value heads; fewer than `heads` because of grouped-query attention (each serves heads / kvHeads). */
  readonly kvHeads: number;
  /** Width of one head (usually hiddenSize / heads). */
  readonly headDim: number;
  /** Hidden width of the SwiGLU feed-forward network. */
  readonly intermediateSize: number;
  /** Number of token ids. */
  readonly vocabSize: number;
  /** RMSNorm's epsilon. */
  readonly rmsNormEps: number;
  /** RoPE base frequency (500000 for Llama 3). */
  readonly ropeTheta: number;
  /** Llama 3.1-style frequency scaling, or null for plain RoPE (Llama 3). */
  readonly ropeScaling: Llama3RopeScaling | null;
  /** The output head reuses the token embedding (Llama 3.2 1B/3B). */
  readonly tieWordEmbeddings: boolean;
  /** Longest context the model supports. */
  readonly maxPositions: number;
  /** Id of `<|begin_of_text|>` (or the model's BOS). */
  readonly bosTokenId: number;
  /** Ids that end generation. */
  readonly eosTokenIds: readonly number[];
}

function field<T>(json: Record<string, unknown>, key: string, type: 'number' | 'boolean', fallback?: T): T {
  const value = json[key] ?? fallback;
  if (typeof value !== type)
    throw new Error(`config: '${key}' must be a ${type}, got ${JSON.stringify(json[key])}`);
  return value as T;
}

/** `json` as an object, or an error naming `file` (parsed JSON is `unknown` until checked). */
function jsonObject(json: unknown, file: string): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new Error(`config: ${file} must be a JSON object, got ${JSON.stringify(json)}`);
  return json as Record<string, unknown>;
}

function ids(value: unknown): number[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((v) => Number.isInteger(v)))
    throw new Error(`config: token ids must be integers, got ${JSON.stringify(value)}`);
  return list as number[];
}

function ropeScalingFromHf(value: unknown): Llama3RopeScaling | null {
  if (value === null || value === undefined) return null;
  const s = value as Record<string, unknown>;
  const type = s.rope_type ?? s.type;
  if (type !== 'llama3')
    throw new Error(`config: rope_scaling of type ${JSON.stringify(type)} is not supported (only 'llama3')`);
  return {
    factor: field(s, 'factor', 'number'),
    lowFreqFactor: field(s, 'low_freq_factor', 'number'),
    highFreqFactor: field(s, 'high_freq_factor', 'number'),
    originalMaxPositions: field(s, 'original_max_position_embeddings', 'number'),
  };
}

function validate(config: LlamaConfig): LlamaConfig {
  const positive = [
    'hiddenSize',
    'layers',
    'heads',
    'kvHeads',
    'headDim',
    'intermediateSize',
    'vocabSize',
    'maxPositions',
  ] as const;
  for (const key of positive) {
    const v = config[key];
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new Error(`config: ${key} must be a positive integer, got ${v}`);
  }
  if (config.heads % config.kvHeads !== 0) {
    throw new Error(`config: heads (${config.heads}) must be a multiple of kvHeads (${config.kvHeads})`);
  }
  if (config.headDim % 2 !== 0) throw new Error(`config: headDim (${config.headDim}) must be even for RoPE`);
  return config;
}

/**
 * Reads a Hugging Face `config.json` (LlamaForCausalLM), as parsed JSON; `generationConfig` is the optional
 * `generation_config.json`, whose `eos_token_id` list (Llama 3 instruct: `<|end_of_text|>`, `<|eom_id|>`,
 * `<|eot_id|>`) takes precedence.
 */
export function configFromHf(config: unknown, generationConfig?: unknown): LlamaConfig {
  const json = jsonObject(config, 'config.json');
  const generation =
    generationConfig === undefined ? undefined : jsonObject(generationConfig, 'generation_config.json');
  const hiddenSize = field<number>(json, 'hidden_size', 'number');
  const heads = field<number>(json, 'num_attention_heads', 'number');
  const eos = ids(generation?.eos_token_id ?? json.eos_token_id);
  return validate({
    hiddenSize,
    layers: field(json, 'num_hidden_layers', 'number'),
    heads,
    kvHeads: field(json, 'num_key_value_heads', 'number', heads),
    headDim: field(json, 'head_dim', 'number', hiddenSize / heads),
    intermediateSize: field(json, 'intermediate_size', 'number'),
    vocabSize: field(json, 'vocab_size', 'number'),
    rmsNormEps: field(json, 'rms_norm_eps', 'number', 1e-5),
    ropeTheta: field(json, 'rope_theta', 'number', 10000),
    ropeScaling: ropeScalingFromHf(json.rope_scaling),
    tieWordEmbeddings: field(json, 'tie_word_embeddings', 'boolean', false),
    maxPositions: field(json, 'max_position_embeddings', 'number', 8192),
    bosTokenId: ids(generation?.bos_token_id ?? json.bos_token_id)[0] ?? 128000,
    eosTokenIds: eos,
  });
}

/**
 * Meta's feed-forward width: `multiple_of * ceil(int(ffn_dim_multiplier * int(8 * dim / 3)) / multiple_of)`
 * (14336 for Llama 3 8B, 8192 for 3.2 1B).
 */
export function metaFfnDim(dim: number, multipleOf: number, ffnDimMultiplier: number | null): number {
  let hidden = Math.trunc((2 * 4 * dim) / 3);
  if (ffnDimMultiplier !== null) hidden = Math.trunc(ffnDimMultiplier * hidden);
  return multipleOf * Math.ceil(hidden / multipleOf);
}

/**
 * The config of a checkpoint in Meta's layout: its `params.json`, with what an HF `config.json` beside it
 * knows better (the RoPE scaling, which `params.json` lacks: factor 32 for Llama 3.2 1B/3B where Meta's
 * code would use 8; the context length; the special token ids, with `generation_config.json`'s EOS list).
 */
export function configFromMeta(params: unknown, hfConfig?: unknown, generationConfig?: unknown): LlamaConfig {
  if (hfConfig === undefined) return configFromMetaParams(params);
  const hf = configFromHf(hfConfig, generationConfig);
  return configFromMetaParams(params, {
    ropeScaling: hf.ropeScaling,
    maxPositions: hf.maxPositions,
    bosTokenId: hf.bosTokenId,
    eosTokenIds: hf.eosTokenIds,
  });
}

/**
 * Reads Meta's `params.json`. It carries no RoPE scaling factor (only `use_scaled_rope`), and Meta's own
 * code hard-codes factor 8, which is wrong for Llama 3.2 1B/3B (32): pass `ropeScaling` to override
 * (for example from an HF `config.json` next to it); otherwise factor 8 with Meta's other constants.
 */
export function configFromMetaParams(json: unknown, overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  const params = jsonObject(json, 'params.json');
  const dim = field<number>(params, 'dim', 'number');
  const heads = field<number>(params, 'n_heads', 'number');
  const multiplier =
    params.ffn_dim_multiplier === undefined || params.ffn_dim_multiplier === null
      ? null
      : field<number>(params, 'ffn_dim_multiplier', 'number');
  const scaled = field<boolean>(params, 'use_scaled_rope', 'boolean', false);
  const vocabSize = field<number>(params, 'vocab_size', 'number');
  return validate({
    hiddenSize: dim,
    layers: field(params, 'n_layers', 'number'),
    heads,
    kvHeads: field(params, 'n_kv_heads', 'number', heads),
    headDim: dim / heads,
    intermediateSize: metaFfnDim(dim, field(params, 'multiple_of', 'number', 256), multiplier),
    vocabSize,
    rmsNormEps: field(params, 'norm_eps', 'number', 1e-5),
    ropeTheta: field(params, 'rope_theta', 'number', 500000),
    ropeScaling: scaled
      ? { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 }
      : null,
    tieWordEmbeddings: false,
    maxPositions: scaled ? 131072 : 8192,
    bosTokenId: vocabSize >= 128256 ? 128000 : 0,
    eosTokenIds: vocabSize >= 128256 ? [128001, 128008, 128009] : [],
    ...overrides,
  });
}
