/**
 * Decoding ids as they are generated.
 * @module
 */

import type { Tokenizer } from './tokenizer.js';

/**
 * Turns ids into text one at a time, for showing a model's output as it is generated. A token can end in the
 * middle of a multi-byte UTF-8 character (emoji and CJK often span tokens); those bytes are held back until
 * the character is complete, so no chunk ever holds half a character or a spurious U+FFFD. The chunks joined,
 * after {@link StreamingDecoder.flush}, equal `tokenizer.decode(allIds)`.
 *
 * @example
 * ```ts
 * import { loadTokenizer, StreamingDecoder } from '@proj/tokenizer';
 * const tokenizer = await loadTokenizer();
 * const ids = tokenizer.encode('Grüße 👋'); // the emoji spans several tokens
 * const stream = new StreamingDecoder(tokenizer);
 * const chunks = ids.map((id) => stream.push(id));
 * chunks.push(stream.flush());
 * console.log(chunks.join('')); // Grüße 👋
 * ```
 */
export class StreamingDecoder {
  private decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  /** Decodes with `tokenizer`'s vocabulary. */
  constructor(private readonly tokenizer: Tokenizer) {}

  /** Adds one id; returns the text it completes (possibly empty). Throws a `RangeError` for an unknown id. */
  push(id: number): string {
    return this.decoder.decode(this.tokenizer.tokenBytes(id), { stream: true });
  }

  /** Adds several ids; returns the text they complete. */
  pushAll(ids: ArrayLike<number>): string {
    return this.decoder.decode(this.tokenizer.decodeBytes(ids), { stream: true });
  }

  /**
   * Ends the stream: returns U+FFFD for bytes still held (a character the ids never finished), or `''`, and
   * resets the decoder for reuse.
   */
  flush(): string {
    const rest = this.decoder.decode();
    this.decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    return rest;
  }
}
