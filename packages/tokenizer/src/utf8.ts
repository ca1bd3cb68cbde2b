/**
 * UTF-8 helpers that work on "byte strings": JS strings whose every char code is one byte (0..255).
 *
 * Byte strings are the key type of the BPE rank table. V8 stores them as one-byte strings and hashes them
 * natively, so looking up a run of bytes costs one `Map.get` with no array joins, and an ASCII piece of text is
 * already its own byte string.
 * @module
 */

const encoder = new TextEncoder();

/** Largest argument list handed to `String.fromCharCode` at once, well under engines' argument limits. */
const CHUNK = 8192;

/** True when every char of `text` is ASCII, so the text is its own UTF-8 byte string. */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return false;
  }
  return true;
}

/** The bytes as a byte string (char code = byte). */
function bytesToByteString(bytes: Uint8Array): string {
  if (bytes.length <= CHUNK) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let out = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return out;
}

/**
 * The UTF-8 encoding of `text` as a byte string. Lone surrogates become U+FFFD (EF BF BD), exactly as
 * `TextEncoder` does, because that is what every reference tokenizer feeds its BPE.
 */
export function utf8ByteString(text: string): string {
  return isAscii(text) ? text : bytesToByteString(encoder.encode(text));
}
