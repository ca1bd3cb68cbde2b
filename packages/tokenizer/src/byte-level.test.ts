/**
 * The byte-level alphabet: GPT-2's `bytes_to_unicode`, which every byte-level `tokenizer.json` uses.
 */
import { describe, expect, it } from 'vitest';
import { byteLevelToByteString } from './byte-level.js';

describe('byteLevelToByteString', () => {
  it('keeps printable Latin-1 and maps the shifted chars back to their bytes', () => {
    expect(byteLevelToByteString('Hello')).toBe('Hello');
    expect(byteLevelToByteString('Ġthe')).toBe(' the'); // U+0120 is byte 0x20, the 33rd shifted byte
    expect(byteLevelToByteString('ĊĉčĀ')).toBe('\n\t\r\u0000');
    expect(byteLevelToByteString('Ń')).toBe('\u00ad'); // the last shifted char: soft hyphen, byte 0xAD
    expect(byteLevelToByteString('Ã©')).toBe('\u00c3\u00a9'); // é in UTF-8, as bytes
  });

  it('maps the 256 bytes one to one', () => {
    const bytes = new Set<string>();
    for (let code = 0x21; code <= 0x143; code++) {
      const bytesOf = byteLevelToByteString(String.fromCharCode(code));
      if (bytesOf !== undefined) bytes.add(bytesOf);
    }
    expect(bytes.size).toBe(256);
  });

  it('rejects chars outside the alphabet', () => {
    for (const symbol of [' ', '\n', 'ń', '中', 'a b', '\u00ad'])
      expect(byteLevelToByteString(symbol)).toBeUndefined();
  });
});
