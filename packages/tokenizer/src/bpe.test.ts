/**
 * Both merge loops against a deliberately naive statement of the rule (lowest rank first, leftmost on ties,
 * string slices throughout), on the real Llama 3 vocabulary.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { BytePairEncoder, HEAP_THRESHOLD } from './bpe.js';
import { parseHfJson } from './hf-json.js';
import { defaultTokenizerJson, randomText, rng } from './test-data.fixture.js';
import { utf8ByteString } from './utf8.js';
import type { Vocabulary } from './vocabulary.js';

let vocab: Vocabulary;
let bpe: BytePairEncoder;
const bytesById: string[] = [];

beforeAll(async () => {
  vocab = parseHfJson(await defaultTokenizerJson());
  for (const [bytes, rank] of vocab.ranks) bytesById[rank] = bytes;
  bpe = new BytePairEncoder(vocab.ranks, bytesById);
});

/** The rule, written for clarity: parts as strings, merge the lowest-ranked adjacent pair until none is left. */
function naiveMerge(bytes: string): number[] {
  const parts = [...bytes];
  for (;;) {
    let best = -1;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 1 < parts.length; i++) {
      const rank = vocab.ranks.get(parts[i]! + parts[i + 1]!);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = i;
      }
    }
    if (best < 0) break;
    parts.splice(best, 2, parts[best]! + parts[best + 1]!);
  }
  return parts.map((part) => vocab.ranks.get(part)!);
}

function scan(bytes: string): number[] {
  const out: number[] = [];
  bpe.mergeWithScan(bytes, out);
  return out;
}

function heap(bytes: string): number[] {
  const out: number[] = [];
  bpe.mergeWithHeap(bytes, out);
  return out;
}

describe('BytePairEncoder', () => {
  it('merges known words into their tokens', () => {
    expect(scan('hello')).toEqual([vocab.ranks.get('hello')]);
    expect(heap(' the')).toEqual([vocab.ranks.get(' the')]);
    // Ties go to the leftmost pair: 'zzz' is not a token but 'zz' is, so 'zzz' is 'zz' + 'z', not 'z' + 'zz'.
    expect(vocab.ranks.has('zzz')).toBe(false);
    expect(scan('zzz')).toEqual([vocab.ranks.get('zz'), vocab.ranks.get('z')]);
    expect(heap('zzz')).toEqual(scan('zzz'));
  });

  it('gives the naive result on random text, through both loops', () => {
    const seed = 7;
    const random = rng(seed);
    for (let i = 0; i < 300; i++) {
      const bytes = utf8ByteString(randomText(random, 1 + Math.floor(random() * 40)));
      const expected = naiveMerge(bytes);
      expect(scan(bytes), `seed ${seed} case ${i}`).toEqual(expected);
      expect(heap(bytes), `seed ${seed} case ${i}`).toEqual(expected);
    }
  });

  it('gives the naive result on random bytes (invalid UTF-8 included)', () => {
    const random = rng(11);
    for (let i = 0; i < 200; i++) {
      let bytes = '';
      for (let k = 0, n = 1 + Math.floor(random() * 30); k < n; k++)
        bytes += String.fromCharCode((random() * 256) | 0);
      expect(heap(bytes)).toEqual(naiveMerge(bytes));
      expect(scan(bytes)).toEqual(naiveMerge(bytes));
    }
  });

  it('stays right after its pair memo fills up and starts over', () => {
    // ~300k distinct pairs of random bytes: more than the memo keeps (2^17), so it is reset along the way.
    const random = rng(12);
    for (let i = 0; i < 3000; i++) {
      let bytes = '';
      for (let k = 0; k < 100; k++) bytes += String.fromCharCode((random() * 256) | 0);
      const out: number[] = [];
      bpe.encode(bytes, out);
      if (i % 100 === 0) expect(out).toEqual(naiveMerge(bytes));
    }
  });

  it('routes long pieces to the heap, which handles 100k bytes quickly', () => {
    const long = 'ab'.repeat(HEAP_THRESHOLD);
    const out: number[] = [];
    bpe.encode(long, out);
    expect(out).toEqual(naiveMerge(long));
    const huge = utf8ByteString('ab'.repeat(50_000));
    const started = performance.now();
    const ids: number[] = [];
    bpe.encode(huge, ids);
    // The quadratic scan needs minutes here; the heap needs well under a second even on a slow machine.
    expect(performance.now() - started).toBeLessThan(5000);
    expect(ids).toEqual(heap(huge));
    expect(ids.map((id) => bytesById[id]).join('')).toBe(huge);
  });
});
