/**
 * `@proj/tokenizer`: Llama 3's byte-level BPE tokenizer. Loads Meta's `tokenizer.model` or a Hugging Face
 * `tokenizer.json` (identical ids), ships a built-in vocabulary, formats chats, decodes streams.
 *
 * Everything except {@link loadTokenizer} and {@link defaultTokenizerPath} runs in browsers too: build from
 * in-memory file contents there with {@link tokenizerFromData}.
 * @packageDocumentation
 */
export * from './chat.js';
export * from './from-data.js';
export { parseHfJson } from './hf-json.js';
export * from './load.js';
export * from './special-tokens.js';
export { LLAMA3_PATTERN_SOURCE, LLAMA3_SPLIT_PATTERN, toJsPattern } from './split-pattern.js';
export * from './streaming-decoder.js';
export { parseTiktoken, toJsTiktoken } from './tiktoken-format.js';
export { type EncodeOptions, Tokenizer } from './tokenizer.js';
export type { SpecialToken, Vocabulary } from './vocabulary.js';
