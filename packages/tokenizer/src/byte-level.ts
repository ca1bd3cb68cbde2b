/**
 * The byte-level alphabet of Hugging Face `tokenizer.json` files (GPT-2's `bytes_to_unicode`).
 *
 * A byte-level vocabulary cannot store raw bytes in JSON keys, so each byte is written as a printable char:
 * bytes that are already printable Latin-1 (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) stand for themselves and the other 68
 * bytes are shifted to U+0100 and up, in byte order. Loading a `tokenizer.json` maps them back.
 * @module
 */

/** True for the bytes that the byte-level alphabet writes as themselves. */
function isPrintable(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

/** Char code → byte, or -1 for chars outside the alphabet; indexed by char code (the alphabet ends at U+0143). */
const CHAR_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(256 + 68).fill(-1);
  let shifted = 256;
  for (let byte = 0; byte < 256; byte++) {
    if (isPrintable(byte)) table[byte] = byte;
    else table[shifted++] = byte;
  }
  return table;
})();

/** Matches symbols made only of bytes written as themselves, which are therefore their own byte string. */
const SELF_WRITTEN = /^[\x21-\x7e\xa1-\xac\xae-\xff]*$/;

/**
 * The bytes a byte-level vocabulary symbol stands for, as a byte string (char code = byte), or `undefined`
 * when the symbol holds a char outside the alphabet (a malformed or non-byte-level file).
 */
export function byteLevelToByteString(symbol: string): string | undefined {
  if (SELF_WRITTEN.test(symbol)) return symbol; // most symbols: a native check, no copy
  let out = '';
  for (let i = 0; i < symbol.length; i++) {
    const code = symbol.charCodeAt(i);
    const byte = code < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[code]! : -1;
    if (byte < 0) return undefined;
    out += String.fromCharCode(byte);
  }
  return out;
}
