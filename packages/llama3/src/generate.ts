/**
 * Streaming generation: prefill the prompt (in passes of at most 512 tokens), then decode one token at a
 * time with the KV cache, yielding each token with the text it completes.
 * @module
 */
import { fromArray, type Tensor } from '@proj/core';
import { argmax, isGreedy, samplingSettings, TokenSampler } from '@proj/ops';
import {
  type ChatMessage,
  chatStopTokens,
  encodeChat,
  StreamingDecoder,
  type Tokenizer,
} from '@proj/tokenizer';
import type { Llama, LlamaCache } from './model.js';
import type { PromptCache } from './prompt-cache.js';
import type { SamplingOptions } from './sampler.js';

/** Options of {@link generate}. */
export interface GenerateOptions extends SamplingOptions {
  /** Turns a string prompt into ids and ids into text; without it, prompts must be ids and `text` is empty. */
  tokenizer?: Tokenizer;
  /** Prepend `<|begin_of_text|>` when encoding a string prompt (default true). */
  bos?: boolean;
  /** Most tokens to generate (default 256). */
  maxNewTokens?: number;
  /** Ids that end generation (default: the model's EOS ids); they are not yielded. */
  stopIds?: readonly number[];
  /** Texts that end generation; the text is cut before the first one and it is not yielded. */
  stopStrings?: readonly string[];
  /** Stops generation (the iterator throws the signal's reason). */
  signal?: AbortSignal;
  /**
   * A KV cache kept between generations: the part of the prompt it already holds is not run again, and it
   * keeps the prompt and the generated tokens for the next call (a conversation's next turn).
   */
  promptCache?: PromptCache;
  /**
   * The most prompt tokens run in one forward pass (default 512, `PREFILL_CHUNK`): a longer prompt is
   * prefilled in passes of this many, so that the memory it takes does not grow with its length
   * ({@link Llama.prefill}).
   */
  prefillChunk?: number;
}

/** One generated token. */
export interface GeneratedToken {
  /**
   * The token id; -1 for the final text-only chunk, which carries text held back until the end (a possible
   * start of a stop string, or an incomplete UTF-8 sequence).
   */
  id: number;
  /** The text this token completes (empty while a multi-byte character is still incomplete). */
  text: string;
}

function promptIds(prompt: string | readonly number[], options: GenerateOptions): number[] {
  if (typeof prompt !== 'string') return [...prompt];
  if (!options.tokenizer)
    throw new Error('generate: a string prompt needs options.tokenizer (or pass token ids)');
  return options.tokenizer.encode(prompt, { bos: options.bos ?? true });
}

/** Holds back text that could be the start of a stop string, and finds stop strings. */
class StopStringFilter {
  #pending = '';
  constructor(private readonly stops: readonly string[]) {}
  /** Returns the text that is safe to emit and whether a stop string was found. */
  push(text: string): { emit: string; stopped: boolean } {
    this.#pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.#pending.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) return { emit: this.#pending.slice(0, cut), stopped: true };
    let keep = 0; // the longest suffix that is a prefix of some stop string
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.#pending.length); n > keep; n--) {
        if (this.#pending.endsWith(s.slice(0, n))) keep = n;
      }
    }
    const emit = this.#pending.slice(0, this.#pending.length - keep);
    this.#pending = this.#pending.slice(this.#pending.length - keep);
    return { emit, stopped: false };
  }
  /** What is left at the end. */
  flush(): string {
    const rest = this.#pending;
    this.#pending = '';
    return rest;
  }
}

/**
 * Generates tokens after `prompt` (a string, with `options.tokenizer`, or token ids), streaming them as
 * they are chosen. Only the chosen ids come back from the device: greedy decoding (temperature 0) and
 * sampling both choose on it.
 * A prompt that does not fit the context is an error; generation stops when the context is full.
 *
 * @example
 * ```ts
 * // doc-example: no-run (needs a downloaded checkpoint)
 * import { generate, loadLlama } from '@proj/llama3';
 * import { loadTokenizer } from '@proj/tokenizer';
 * const model = await loadLlama('./Llama-3.2-1B');
 * const tokenizer = await loadTokenizer('./Llama-3.2-1B');
 * for await (const t of generate(model, 'The capital of France is', { tokenizer, maxNewTokens: 8 })) {
 *   process.stdout.write(t.text);
 * }
 * ```
 */
export async function* generate(
  model: Llama,
  prompt: string | readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<GeneratedToken, void, undefined> {
  const ids = promptIds(prompt, options);
  const maxNew = options.maxNewTokens ?? 256;
  if (ids.length === 0) throw new Error('generate: the prompt is empty');
  if (!(Number.isInteger(maxNew) && maxNew >= 0))
    throw new Error(`generate: maxNewTokens must be a non-negative integer, got ${maxNew}`);
  const kept = options.promptCache;
  if (kept && kept.model !== model) throw new Error('generate: the promptCache belongs to another model');
  const room = kept ? kept.cache.capacity : model.contextLength;
  if (ids.length >= room) {
    throw new Error(
      `generate: the prompt has ${ids.length} tokens, but the ${kept ? "promptCache's cache" : 'context'} holds ${room} (room is needed for at least one new token)`,
    );
  }
  if (maxNew === 0) return;
  // The next token is chosen on the model's device (`argmax`, or a `TokenSampler`, which keeps its draw
  // counter and the seen tokens there) and written to `token`, where the next step reads it: only ids come
  // back. The steps after the prompt's are recorded ahead of the ids read back (on a GPU, replayed): the
  // device always has a step queued while the host waits for an id (still one submit per token).
  const settings = samplingSettings(options); // validated even where unused
  const stopIds = new Set(options.stopIds ?? model.config.eosTokenIds);
  const decoder = options.tokenizer ? new StreamingDecoder(options.tokenizer) : undefined;
  const stops = new StopStringFilter(options.stopStrings ?? []);
  // What holds device memory is made inside the `try`, so that a failure (an allocation over the device's
  // limits, an id outside the vocabulary) frees whatever was made before it.
  let cache: LlamaCache | undefined;
  let token: Tensor<readonly [1], 'i32'> | undefined;
  let sampler: TokenSampler | undefined;
  const read: number[] = []; // the ids read back, in order: with the prompt, what the cache holds
  let failed = false;
  try {
    cache = kept?.cache ?? model.createCache(Math.min(model.contextLength, ids.length + maxNew));
    const reused = kept?.reuse(ids) ?? 0; // positions of the prompt already in the cache
    token = fromArray(Int32Array.of(0), [1], { dtype: 'i32', device: model.device });
    if (!isGreedy(settings)) sampler = new TokenSampler(model.device, model.config.vocabSize, settings);
    // [1, V]: the last position; prefill checks the ids first (the sampler would only name its own op).
    const logits = model.prefill(ids.slice(reused), cache, options.prefillChunk);
    if (sampler && sampler.settings.repetitionPenalty !== 1) sampler.see(ids);
    if (sampler) sampler.sample(logits, token);
    else argmax(logits, { into: token });
    logits.dispose();
    const pending = [readId(token)]; // the ids recorded and not yet read, in order
    let recorded = 0; // steps recorded after the prompt's
    // The CPU computes each step as it is called: running ahead there only wastes steps past a stop.
    const lookahead = model.device.kind === 'webgpu' ? LOOKAHEAD : 1;
    for (let step = 0; step < maxNew; step++) {
      options.signal?.throwIfAborted();
      while (pending.length <= lookahead && recorded + 1 < maxNew && cache.length < cache.capacity) {
        if (sampler) model.sampleStep(token, cache, sampler);
        else model.greedyStep(token, cache);
        pending.push(readId(token));
        recorded++;
      }
      const id = await pending.shift()!;
      read.push(id);
      options.signal?.throwIfAborted();
      if (id < 0)
        throw new Error(
          "sampling: the model's output is broken (a NaN or +Infinity logit, or none above -Infinity)",
        );
      if (stopIds.has(id)) break;
      const { emit, stopped } = stops.push(decoder ? decoder.push(id) : '');
      if (stopped) {
        if (emit) yield { id, text: emit };
        return;
      }
      yield { id, text: emit };
      if (pending.length === 0) break;
    }
    const rest = stops.flush() + (decoder?.flush() ?? '');
    if (rest) yield { id: -1, text: rest };
  } catch (error) {
    failed = !options.signal?.aborted; // stopped on request, the ids read are what the cache holds
    throw error;
  } finally {
    token?.dispose(); // steps recorded past a stop: their reads complete on their own
    if (!kept) cache?.dispose();
    else if (failed) kept.clear();
    else kept.hold([...ids, ...read]);
    sampler?.dispose();
  }
}

/**
 * Steps recorded on a GPU beyond the one whose id is awaited. One leaves the device idle while an
 * id comes back (about 0.3 ms on an H100 with Dawn, a fifth of a 1B step); two keep it busy. Steps
 * recorded past a stop are discarded.
 */
const LOOKAHEAD = 2;

/** The id in `token` once the work recorded so far has run: one id comes back, not the logits. */
function readId(token: Tensor<readonly [1], 'i32'>): Promise<number> {
  const id = token.toArray().then((a) => a[0]!);
  id.catch(() => {}); // awaited unless generation stops first; a failure then has no one to tell
  return id;
}

/** Generates and collects the whole text (see {@link generate}). */
export async function generateText(
  model: Llama,
  prompt: string | readonly number[],
  options: GenerateOptions = {},
): Promise<string> {
  let text = '';
  for await (const t of generate(model, prompt, options)) text += t.text;
  return text;
}

/**
 * Answers a conversation with an instruct model: formats `messages` with the Llama 3 chat template, adds
 * the assistant header, and generates until `<|eot_id|>` (or another chat stop token).
 */
export function chat(
  model: Llama,
  messages: readonly ChatMessage[],
  options: GenerateOptions & { tokenizer: Tokenizer },
): AsyncGenerator<GeneratedToken, void, undefined> {
  const ids = encodeChat(options.tokenizer, messages);
  return generate(model, ids, { stopIds: chatStopTokens(options.tokenizer), ...options });
}
