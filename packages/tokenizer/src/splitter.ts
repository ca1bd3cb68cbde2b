/**
 * Cutting text into pre-token pieces.
 * @module
 */

import { llama3PieceEnd } from './llama3-splitter.js';
import { LLAMA3_SPLIT_PATTERN } from './split-pattern.js';

/** Returns the end of the piece that starts at `start` (`start < text.length`; the result is > `start`). */
export type PieceSplitter = (text: string, start: number) => number;

/**
 * The splitter for `pattern`: the hand-written Llama 3 scanner when `pattern` is Llama 3's, else the compiled
 * regex. With a regex, text the pattern skips becomes a piece of its own, as in Hugging Face's "Isolated"
 * split, so no input is ever dropped.
 */
export function splitterFor(pattern: string): PieceSplitter {
  return pattern === LLAMA3_SPLIT_PATTERN ? llama3PieceEnd : regexSplitter(pattern);
}

/** A splitter that runs `pattern` (compiled with the `u` flag) as a regex. */
export function regexSplitter(pattern: string): PieceSplitter {
  const regex = new RegExp(pattern, 'gu');
  return (text, start) => {
    regex.lastIndex = start;
    let match = regex.exec(text);
    // An empty match cannot make progress: look for the next non-empty one, the skipped text is a gap.
    while (match !== null && match[0].length === 0) {
      regex.lastIndex = match.index + 1;
      match = regex.exec(text);
    }
    if (match === null) return text.length;
    if (match.index > start) return match.index;
    return start + match[0].length;
  };
}
