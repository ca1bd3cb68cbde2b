/**
 * A KV cache kept from one generation to the next, for conversations.
 * @module
 */
import type { Llama, LlamaCache } from './model.js';

/**
 * A KV cache kept from one generation to the next, with the token ids whose keys and values it holds: a
 * prompt that begins with them runs only what follows (`generate(model, prompt, { promptCache })`). A
 * conversation's next turn is the earlier turns, the answer and the new message, so each turn prefills
 * only its new part, not the whole conversation again. A prompt that shares less (the oldest turns
 * dropped to fit the context, another conversation) reuses the part it shares, possibly none.
 *
 * @example
 * ```ts
 * import { generate, LLAMA32_1B, PromptCache, randomLlama } from '@proj/llama3';
 * // A miniature Llama 3.2 1B with random weights, on the CPU.
 * const config = {
 *   ...LLAMA32_1B,
 *   ...{ hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediateSize: 128 },
 * };
 * const model = randomLlama(config, { contextLength: 256 });
 * const promptCache = new PromptCache(model);
 * const options = { temperature: 0, stopIds: [], promptCache };
 * const answer: number[] = [];
 * for await (const t of generate(model, [1, 2, 3], { ...options, maxNewTokens: 4 })) answer.push(t.id);
 * // The prompt and the answer's tokens that were run (the last one read never was):
 * console.log(promptCache.ids.length); // 6
 * // The next prompt begins with the first and its answer: only the rest runs.
 * for await (const _ of generate(model, [1, 2, 3, ...answer, 7, 8], { ...options, maxNewTokens: 2 })) {}
 * console.log(promptCache.ids.length); // 10
 * promptCache.dispose();
 * model.dispose();
 * ```
 */
export class PromptCache {
  /** The KV cache, of `capacity` positions. */
  readonly cache: LlamaCache;
  #ids: number[] = [];

  /** A cache of `capacity` positions (default: the model's context) for prompts to `model`. */
  constructor(
    readonly model: Llama,
    capacity: number = model.contextLength,
  ) {
    this.cache = model.createCache(capacity);
  }

  /** The ids whose keys and values the cache holds, in order. */
  get ids(): readonly number[] {
    return this.#ids;
  }

  /**
   * Keeps the longest prefix of `prompt` that the cache holds, but never all of it (its last token must run
   * to give the logits), and forgets the rest; returns how many positions it kept.
   */
  reuse(prompt: readonly number[]): number {
    const most = Math.min(this.#ids.length, prompt.length - 1);
    let shared = 0;
    while (shared < most && this.#ids[shared] === prompt[shared]) shared++;
    this.#keep(this.#ids.slice(0, shared));
    return shared;
  }

  /**
   * Records that the cache holds `ids` from its first position, as far as it has filled them (a generation
   * may have run steps past the ids it read back: those positions are forgotten).
   */
  hold(ids: readonly number[]): void {
    this.#keep(ids.slice(0, Math.min(ids.length, this.cache.length)));
  }

  #keep(ids: number[]): void {
    this.cache.truncate(ids.length);
    this.#ids = ids;
  }

  /** Forgets everything it holds (after a failed generation, whose steps may be half written). */
  clear(): void {
    this.cache.reset();
    this.#ids = [];
  }

  /** Frees the cache. */
  dispose(): void {
    this.cache.dispose();
    this.#ids = [];
  }
}
