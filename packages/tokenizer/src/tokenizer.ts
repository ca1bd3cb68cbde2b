/**
 * The tokenizer: text → ids (byte-level BPE) and ids → text.
 * @module
 */

import { BytePairEncoder } from './bpe.js';
import { PieceCache, type PieceIds } from './piece-cache.js';
import { BEGIN_OF_TEXT, END_OF_TEXT } from './special-tokens.js';
import { type PieceSplitter, splitterFor } from './splitter.js';
import { utf8ByteString } from './utf8.js';
import { checkVocabulary, type Vocabulary } from './vocabulary.js';

/** Options of {@link Tokenizer.encode} and {@link Tokenizer.countTokens}. */
export interface EncodeOptions {
  /** Prepend `<|begin_of_text|>`. Default `false`; a prompt for the model wants `true`. */
  bos?: boolean;
  /** Append `<|end_of_text|>`. Default `false`. */
  eos?: boolean;
  /**
   * Which special-token texts inside `text` become control tokens: `true` for all, a list of names for those,
   * `false` (the default) for none. By default `<|eot_id|>` typed by a user is encoded as the plain characters
   * it is made of, so user input cannot forge chat structure (prompt injection).
   */
  allowSpecial?: boolean | readonly string[];
}

/** Pieces longer than this are not cached: they are rare, and hashing them costs as much as a miss. */
const MAX_CACHED_PIECE = 64;

/** Cache generation size: comfortably above the distinct pieces of a few MB of prose. */
const CACHE_CAPACITY = 1 << 16;

/** Non-streaming UTF-8 decoder (stateless between calls); keeps a leading BOM, which is text to a tokenizer. */
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Escapes `text` for use as a literal inside a RegExp. */
function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/**
 * Llama 3's tokenizer: byte-level BPE over a {@link Vocabulary}. Build it with `loadTokenizer` or the
 * `tokenizerFrom*` functions; the constructor takes already-parsed data so it works without a file system.
 *
 * Instances memoize piece encodings (bounded), so keep one and reuse it. Ids are identical to js-tiktoken and to
 * Hugging Face's tokenizers given the same vocabulary, but encoding is several times faster: a hand-written
 * splitter instead of a regex, a memo of pieces, and merging over integer ids instead of comma-joined bytes.
 */
export class Tokenizer {
  /** One more than the largest id: the size of the model's embedding table (128256 for Llama 3). */
  readonly vocabSize: number;
  /** Id of `<|begin_of_text|>` (128000). */
  readonly bosId: number;
  /** Id of `<|end_of_text|>` (128001). */
  readonly eosId: number;
  /** Special token text → id, aliases included. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** The split pattern (JavaScript source) this tokenizer cuts text with before merging. */
  readonly pattern: string;

  private readonly bpe: BytePairEncoder;
  /** Id → the token's bytes as a byte string; special tokens hold their text's UTF-8. */
  private readonly bytesById: (string | undefined)[];
  private readonly specialIds: Set<number>;
  private readonly splitter: PieceSplitter;
  private readonly cache = new PieceCache(CACHE_CAPACITY);
  private allSpecialRegex: RegExp | undefined;

  /** Checks `vocab` (throws on malformed data) and indexes it. */
  constructor(vocab: Vocabulary) {
    checkVocabulary(vocab, 'vocabulary');
    this.pattern = vocab.pattern;
    this.splitter = splitterFor(vocab.pattern);
    const bytesById: (string | undefined)[] = [];
    for (const [bytes, rank] of vocab.ranks) bytesById[rank] = bytes;
    const special = new Map<string, number>();
    this.specialIds = new Set();
    for (const { name, id } of vocab.specialTokens) {
      special.set(name, id);
      this.specialIds.add(id);
      bytesById[id] ??= utf8ByteString(name);
    }
    this.specialTokens = special;
    this.bytesById = bytesById;
    this.bpe = new BytePairEncoder(vocab.ranks, bytesById);
    this.vocabSize = bytesById.length;
    this.bosId = this.specialTokenId(BEGIN_OF_TEXT);
    this.eosId = this.specialTokenId(END_OF_TEXT);
  }

  /** The id of special token `name` (for example `<|eot_id|>`); throws if there is none. */
  specialTokenId(name: string): number {
    const id = this.specialTokens.get(name);
    if (id === undefined) throw new Error(`no special token named ${JSON.stringify(name)}`);
    return id;
  }

  /** True when `id` is a special (control) token. */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Encodes `text` to token ids. Special-token text stays plain text unless `options.allowSpecial` says so. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.bos) out.push(this.bosId);
    this.encodeWithSpecials(text, options.allowSpecial, out);
    if (options.eos) out.push(this.eosId);
    return out;
  }

  /**
   * How many tokens `encode(text, options)` would return, without building the id array: pieces found in the
   * memo are counted in place.
   */
  countTokens(text: string, options: EncodeOptions = {}): number {
    return (
      (options.bos ? 1 : 0) +
      this.encodeWithSpecials(text, options.allowSpecial, null) +
      (options.eos ? 1 : 0)
    );
  }

  /**
   * Decodes ids to text. Byte sequences that are not valid UTF-8 (an id sequence cut inside a character)
   * become U+FFFD, as in every reference decoder; a leading byte-order mark is kept, not stripped.
   * Throws a `RangeError` for an id outside the vocabulary.
   */
  decode(ids: ArrayLike<number>): string {
    return utf8Decoder.decode(this.decodeBytes(ids));
  }

  /** The raw bytes of `ids` joined; throws a `RangeError` for an id outside the vocabulary. */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let total = 0;
    for (let i = 0; i < ids.length; i++) total += this.byteString(ids[i]!).length;
    const out = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const bytes = this.bytesById[ids[i]!]!;
      for (let k = 0; k < bytes.length; k++) out[at++] = bytes.charCodeAt(k);
    }
    return out;
  }

  /** The bytes of one token (special tokens: their text's UTF-8); throws a `RangeError` for an unknown id. */
  tokenBytes(id: number): Uint8Array {
    const bytes = this.byteString(id);
    const out = new Uint8Array(bytes.length);
    for (let k = 0; k < bytes.length; k++) out[k] = bytes.charCodeAt(k);
    return out;
  }

  /** Drops the memo of piece encodings (it refills as text is encoded). Useful for cold-start timing. */
  clearCache(): void {
    this.cache.clear();
  }

  private byteString(id: number): string {
    const bytes = this.bytesById[id];
    if (bytes === undefined) {
      throw new RangeError(
        `token id ${id} is outside the vocabulary (ids are integers 0..${this.vocabSize - 1})`,
      );
    }
    return bytes;
  }

  /** Splits off allowed special tokens, encodes the text between them; returns the token count. */
  private encodeWithSpecials(
    text: string,
    allow: boolean | readonly string[] | undefined,
    out: number[] | null,
  ): number {
    const regex = this.specialRegex(allow);
    if (regex === undefined) return this.encodeOrdinary(text, out);
    let count = 0;
    let start = 0;
    regex.lastIndex = 0;
    for (let match = regex.exec(text); match !== null; match = regex.exec(text)) {
      count += this.encodeOrdinary(text.slice(start, match.index), out);
      out?.push(this.specialTokens.get(match[0])!);
      count++;
      start = match.index + match[0].length;
    }
    return count + this.encodeOrdinary(start === 0 ? text : text.slice(start), out);
  }

  /** The regex matching the allowed special tokens, longest name first; `undefined` when none are allowed. */
  private specialRegex(allow: boolean | readonly string[] | undefined): RegExp | undefined {
    if (allow === undefined || allow === false) return undefined;
    if (allow === true) {
      this.allSpecialRegex ??= this.buildSpecialRegex([...this.specialTokens.keys()]);
      return this.allSpecialRegex;
    }
    if (allow.length === 0) return undefined;
    for (const name of allow) this.specialTokenId(name); // throws on a name that is not a special token
    return this.buildSpecialRegex(allow);
  }

  private buildSpecialRegex(names: readonly string[]): RegExp {
    const sorted = [...names].sort((a, b) => b.length - a.length);
    return new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
  }

  /** Encodes text without special tokens: split, then memo or merge per piece. Returns the token count. */
  private encodeOrdinary(text: string, out: number[] | null): number {
    const splitter = this.splitter;
    let count = 0;
    for (let start = 0; start < text.length; ) {
      const end = splitter(text, start);
      count += this.encodePiece(text.slice(start, end), out);
      start = end;
    }
    return count;
  }

  private encodePiece(piece: string, out: number[] | null): number {
    let ids: PieceIds | undefined = this.cache.get(piece);
    if (ids === undefined) {
      const merged: number[] = [];
      this.bpe.encode(utf8ByteString(piece), merged);
      ids = merged.length === 1 ? merged[0]! : merged;
      if (piece.length <= MAX_CACHED_PIECE) this.cache.set(piece, ids);
    }
    if (typeof ids === 'number') {
      out?.push(ids);
      return 1;
    }
    if (out !== null) for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
    return ids.length;
  }
}
