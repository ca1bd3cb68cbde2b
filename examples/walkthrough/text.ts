/**
 * Text <-> token ids for the tour: Llama 3's tokenizer when the model has its vocabulary, else a byte-level
 * stand-in (ids 0 to 255 are the UTF-8 bytes), which fits the small-vocabulary fixtures whose prompt ids
 * come from 0 to 255.
 */
import type { Tokenizer } from '@proj/tokenizer';

/** How the tour turns the prompt into ids and ids back into text. */
export interface TokenText {
  /** Shown in the header. */
  readonly name: string;
  /** The prompt's ids, BOS first. */
  encode(prompt: string): number[];
  /** The text of `ids`. */
  decode(ids: readonly number[]): string;
}

/** Llama 3's tokenizer. */
export function llama3Text(tokenizer: Tokenizer): TokenText {
  return {
    name: `Llama 3 tokenizer (${tokenizer.vocabSize} ids)`,
    encode: (prompt) => tokenizer.encode(prompt, { bos: true }),
    decode: (ids) => tokenizer.decode(ids),
  };
}

/** A byte-level stand-in: one id per UTF-8 byte, `bos` first; ids past 255 print as `<id>`. */
export function byteText(bos: number): TokenText {
  const utf8 = new TextDecoder();
  return {
    name: `bytes as ids (BOS = ${bos}), a stand-in: this vocabulary is not Llama 3's`,
    encode: (prompt) => [bos, ...new TextEncoder().encode(prompt)],
    decode: (ids) => {
      let out = '';
      let bytes: number[] = [];
      const flush = () => {
        out += utf8.decode(new Uint8Array(bytes));
        bytes = [];
      };
      for (const id of ids) {
        if (id < 256) bytes.push(id);
        else {
          flush();
          out += `<${id}>`;
        }
      }
      flush();
      return out;
    },
  };
}

/** One token's text, quoted so spaces and newlines show: `" fox"`. */
export function piece(text: TokenText, id: number): string {
  return JSON.stringify(text.decode([id]));
}
