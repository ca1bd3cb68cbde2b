/**
 * The hand-written Llama 3 scanner must cut text exactly where the split pattern's regex does; the pattern's
 * JavaScript spelling must mean what the original `(?i:...)` form means.
 */
import { describe, expect, it } from 'vitest';
import { llama3PieceEnd } from './llama3-splitter.js';
import { LLAMA3_PATTERN_SOURCE, LLAMA3_SPLIT_PATTERN, toJsPattern } from './split-pattern.js';
import { type PieceSplitter, regexSplitter, splitterFor } from './splitter.js';
import { CORPUS, randomText, rng } from './test-data.fixture.js';

function pieces(splitter: PieceSplitter, text: string): string[] {
  const out: string[] = [];
  for (let start = 0; start < text.length; ) {
    const end = splitter(text, start);
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

function regexPieces(text: string): string[] {
  return text.match(new RegExp(LLAMA3_SPLIT_PATTERN, 'gu')) ?? [];
}

describe('the Llama 3 split pattern', () => {
  it('rewrites the (?i:...) group of the original into explicit case classes', () => {
    expect(toJsPattern(LLAMA3_PATTERN_SOURCE)).toBe(LLAMA3_SPLIT_PATTERN);
    expect(LLAMA3_SPLIT_PATTERN).not.toContain('(?i');
  });

  it('matches contractions in any case, as the original case-insensitive group does', () => {
    expect(regexPieces("I'M they'LL we'Re it's")).toEqual([
      'I',
      "'M",
      ' they',
      "'LL",
      ' we',
      "'Re",
      ' it',
      "'s",
    ]);
  });

  it('groups digits in threes and keeps a space apart from digits', () => {
    expect(regexPieces('x 1234567')).toEqual(['x', ' ', '123', '456', '7']);
  });

  it('leaves the last space of a run to the next word', () => {
    expect(regexPieces('a   b\n\n  c')).toEqual(['a', '  ', ' b', '\n\n', ' ', ' c']);
  });

  it('treats Unicode White_Space as whitespace, as Rust engines do: U+0085 is, U+FEFF is not', () => {
    expect(regexPieces('x \u0085F')).toEqual(['x', ' ', '\u0085F']);
    expect(regexPieces('x \ufeffF')).toEqual(['x', ' \ufeff', 'F']); // a symbol, like ' !'
    expect(toJsPattern('[^\\s]\\S(?i:\\s)')).toBe('[^\\p{White_Space}]\\P{White_Space}(?:\\p{White_Space})');
  });

  it('refuses (?i:...) groups it cannot fold faithfully, and other inline modifiers', () => {
    expect(() => toJsPattern('(?i:[a-z])')).toThrow(/character class/);
    expect(() => toJsPattern('(?i)abc')).toThrow(/inline modifier/);
    expect(() => toJsPattern('(?i:abc')).toThrow(/unclosed/);
    expect(toJsPattern('(?i:a\\p{L}(?:b))c')).toBe('(?:[aA]\\p{L}(?:[bB]))c');
  });
});

describe('llama3PieceEnd', () => {
  it('is the scanner chosen for the Llama 3 pattern, and the regex for others', () => {
    expect(splitterFor(LLAMA3_SPLIT_PATTERN)).toBe(llama3PieceEnd);
    expect(splitterFor('\\w+')).not.toBe(llama3PieceEnd);
  });

  it.each(CORPUS)('cuts like the regex: %s', (_name, text) => {
    expect(pieces(llama3PieceEnd, text)).toEqual(regexPieces(text));
  });

  it('cuts like the regex on random Unicode text, lone surrogates included', () => {
    const seed = 20240601;
    const random = rng(seed);
    for (let i = 0; i < 400; i++) {
      let text = randomText(random, 1 + Math.floor(random() * 80));
      if (i % 10 === 0) text += '\ud800' + text + '\udc00x'; // lone surrogates are OTHER for the regex
      expect(pieces(llama3PieceEnd, text), `seed ${seed}, case ${i}: ${JSON.stringify(text)}`).toEqual(
        regexPieces(text),
      );
    }
  });
});

describe('regexSplitter', () => {
  it('keeps text the pattern skips as pieces of their own, so nothing is dropped', () => {
    expect(pieces(regexSplitter('[a-z]+'), '12ab 3cd')).toEqual(['12', 'ab', ' 3', 'cd']);
  });

  it('makes progress on patterns that match the empty string', () => {
    expect(pieces(regexSplitter('x*'), 'abxxc')).toEqual(['ab', 'xx', 'c']);
  });
});
