import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, inflateSync } from 'node:zlib';
import { cpu, type Device } from '@proj/core';
import { openSafetensors } from '@proj/core/node';
import { type Llama, loadLlama } from '@proj/llama3';
import type { WebGpuDevice } from '@proj/ops';
import { testDevice } from '@proj/ops/testing';
import { loadTokenizer } from '@proj/tokenizer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithShared, fixture } from '../../test-support/fixtures.js';
import { RecordingNarrator } from './narrate.js';
import { attentionPng, attentionSvg, cellPixels, ropeSvg, writePictures } from './pictures.js';
import { PNG_SIGNATURE } from './png.js';
import { DEFAULT_PROMPT, runWalkthrough, type WalkthroughResult } from './run.js';
import { llama3Text, type TokenText } from './text.js';

// Why 1e-4: the tour and Llama.forward compute the same f32 math on the same weights (on the CPU they agree
// to the bit today), but the product fuses the q/k/v split, RoPE and the cache append (ropeQkv) and SwiGLU
// (swigluPacked) into kernels of their own, and GPU kernels may round differently per shape (lavapipe:
// 1.2e-6). 1e-4 is the fixtures' fp32 tolerance for logits of magnitude < 5: far above such rounding, far
// below a real mistake (a wrong RoPE scaling alone moves these logits by 1e-3 to 1e-2).
const TOLERANCE = 1e-4;

// tiny-llama3-gqa: D = 64, 4 query heads and 2 kv heads of Dh = 16, F = 192, V = 128256; the default prompt
// is 11 tokens with BOS.
const [S, D, Hq, Hkv, Dh, F, V] = [11, 64, 4, 2, 16, 192, 128256];
const STEPS = 3;

/** The PNG's width, height and inflated image data, after checking the signature and chunk CRCs. */
function decodePng(png: Uint8Array): { width: number; height: number; raw: Uint8Array } {
  expect([...png.subarray(0, 8)]).toEqual([...PNG_SIGNATURE]);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let at = 8;
  const idat: Uint8Array[] = [];
  let header: DataView | undefined;
  const types: string[] = [];
  while (at < png.length) {
    const length = view.getUint32(at);
    const type = new TextDecoder().decode(png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + length);
    expect(view.getUint32(at + 8 + length), `${type} CRC`).toBe(crc32(png.subarray(at + 4, at + 8 + length)));
    types.push(type);
    if (type === 'IHDR') header = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  expect(types[0]).toBe('IHDR');
  expect(types.at(-1)).toBe('IEND');
  if (!header) throw new Error('no IHDR');
  expect([header.getUint8(8), header.getUint8(9)]).toEqual([8, 2]); // 8-bit RGB
  const raw = inflateSync(Buffer.concat(idat));
  return { width: header.getUint32(0), height: header.getUint32(4), raw };
}

/** Checks that every tag is closed in order (enough to catch broken SVG) and counts `<tag class="name"`. */
function checkXml(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing) continue;
    if (closing) expect(stack.pop()).toBe(name);
    else stack.push(name!);
  }
  expect(stack).toEqual([]);
  expect(svg).not.toMatch(/&(?!#\d+;|amp;|lt;|gt;|quot;)/); // every & starts an entity
}

const count = (svg: string, what: string) => svg.split(what).length - 1;

describeWithShared('walkthrough on tiny-llama3-gqa', () => {
  let text: TokenText;
  beforeAll(async () => {
    text = llama3Text(await loadTokenizer());
  });

  for (const kind of ['cpu', 'webgpu'] as const) {
    describe(kind, () => {
      let gpu: WebGpuDevice | undefined;
      let model: Llama | undefined;
      let result: WalkthroughResult | undefined;
      const log = new RecordingNarrator();
      beforeAll(async () => {
        let device: Device | undefined = cpu;
        if (kind === 'webgpu') device = gpu = await testDevice();
        if (!device) return;
        model = await loadLlama(fixture('tiny-llama3-gqa'), { device });
        result = await runWalkthrough(model, text, {
          prompt: DEFAULT_PROMPT,
          decodeSteps: STEPS,
          layer: 1,
          head: 3,
          log,
        });
      });
      afterAll(() => {
        model?.dispose();
        gpu?.destroy();
      });

      it("computes Llama.forward's logits with its own steps (within 1e-4)", ({ skip }) => {
        if (!result) return skip('no WebGPU adapter');
        expect(result.logits.length).toBe(S * V);
        expect(result.logitsDiff).toBeLessThanOrEqual(TOLERANCE);
        expect(result.pass.head0VsOp).toBeLessThanOrEqual(1e-5); // head 0 by hand = head 0 of the op
      });

      it('narrates the shapes of this config at every step', ({ skip }) => {
        if (!result) return skip('no WebGPU adapter');
        expect(result.pass.ids.length).toBe(S);
        const expected: Record<string, [number[], number[]]> = {
          tokens: [[DEFAULT_PROMPT.length], [S]],
          embed: [[S], [S, D]],
          attn_norm: [
            [S, D],
            [S, D],
          ],
          q_head: [
            [S, D],
            [S, Dh],
          ],
          k_head: [
            [S, D],
            [S, Dh],
          ],
          v_head: [
            [S, D],
            [S, Dh],
          ],
          rope: [
            [S, Dh],
            [S, Dh],
          ],
          scores: [
            [S, Dh],
            [S, S],
          ],
          mask: [
            [S, S],
            [S, S],
          ],
          softmax: [
            [S, S],
            [S, S],
          ],
          head_out: [
            [S, S],
            [S, Dh],
          ],
          qkv_all: [
            [S, D],
            [S, Hq, Dh],
          ],
          attention: [
            [S, Hq, Dh],
            [S, Hq, Dh],
          ],
          wo: [
            [S, Hq * Dh],
            [S, D],
          ],
          residual: [
            [S, D],
            [S, D],
          ],
          ffn_norm: [
            [S, D],
            [S, D],
          ],
          swiglu: [
            [S, D],
            [S, F],
          ],
          ffn_down: [
            [S, F],
            [S, D],
          ],
          ffn_residual: [
            [S, D],
            [S, D],
          ],
          layer_1: [
            [S, D],
            [S, D],
          ],
          final_norm: [
            [S, D],
            [S, D],
          ],
          logits: [
            [S, D],
            [S, V],
          ],
          next_token: [[1, V], [1]],
          prefill: [[S], [S, V]],
          decode: [[1], [1, V]],
        };
        for (const [key, [input, output]] of Object.entries(expected)) {
          expect([log.get(key).input, log.get(key).output], key).toEqual([input, output]);
        }
        expect(log.lines.find((l) => l.includes('q of head 0'))).toContain('[11, 64] -> [11, 16]');
        expect(log.get('qkv_all').why).toContain(`k and v [${S}, ${Hkv}, ${Dh}]`); // GQA: fewer kv heads
        expect(log.steps.filter((s) => s.key === 'decode')).toHaveLength(STEPS);
      });

      it('without the causal mask, early positions attend to later ones and their outputs change', ({
        skip,
      }) => {
        if (!result) return skip('no WebGPU adapter');
        const { futureWeight, headOutDiff, logitsDiff, predictions } = result.noMask;
        expect(futureWeight[0]).toBeGreaterThan(0.1); // position 0 now looks ahead
        expect(futureWeight[S - 1]).toBe(0); // the last position has nothing ahead of it
        expect(headOutDiff[0]).toBeGreaterThan(1e-2);
        expect(headOutDiff[S - 1]).toBeLessThan(1e-5); // it saw every key already
        expect(logitsDiff[0]).toBeGreaterThan(1e-2);
        expect(predictions[0]).not.toBe(result.predictions[0]); // the first prediction changes
        expect(result.predictions).toHaveLength(S);
        expect(result.predictions[S - 1]).toBe(result.pass.next);
      });

      it('decodes one token per step with a growing KV cache, as Llama.forward does', ({ skip }) => {
        if (!result) return skip('no WebGPU adapter');
        const { tokens, productTokens, cacheLengths, productDiff, recomputeDiff } = result.decode;
        expect(cacheLengths).toEqual([S, S + 1, S + 2, S + 3]);
        expect(tokens).toHaveLength(STEPS + 1);
        expect(tokens[0]).toBe(result.pass.next);
        expect(tokens).toEqual(productTokens);
        expect(productDiff).toBeLessThanOrEqual(TOLERANCE);
        expect(recomputeDiff).toBeLessThanOrEqual(TOLERANCE); // the cache changes nothing but the cost
      });

      it('draws the attention map of the picked head and the RoPE rotation', ({ skip }) => {
        if (!result) return skip('no WebGPU adapter');
        const { probs } = result.pass.picture;
        expect(result.pass.picture).toMatchObject({ layer: 1, head: 3 });
        for (let i = 0; i < S; i++) {
          const rowSum = probs.subarray(i * S, (i + 1) * S).reduce((a, b) => a + b, 0);
          expect(rowSum).toBeCloseTo(1, 5);
        }
        const png = decodePng(attentionPng(probs, S));
        const side = S * cellPixels(S);
        expect([png.width, png.height]).toEqual([side, side]);
        expect(png.raw.length).toBe(side * (1 + side * 3)); // a filter byte, then RGB, per row
        const svg = attentionSvg(probs, result.tokens, 'layer 1, head 3');
        checkXml(svg);
        expect(count(svg, '<rect class="cell"')).toBe(S * S);
        const rope = ropeSvg(model!.config, result.pass.query);
        checkXml(rope);
        expect(count(rope, '<g class="pair">')).toBe(6);
      });

      // Written once, from the CPU run (the pictures do not depend on the device).
      if (kind === 'cpu')
        it('writes the three pictures into the output folder', async () => {
          if (!result) throw new Error('the CPU run did not happen');
          const dir = await mkdtemp(join(tmpdir(), 'walkthrough-test-'));
          const paths = await writePictures(
            dir,
            { probs: result.pass.picture.probs, tokens: result.tokens, layer: 1, head: 3, kvHead: 1 },
            { config: model!.config, query: result.pass.query },
          );
          expect(paths.attentionPng).toBe(join(dir, 'attention-layer1-head3.png'));
          expect(decodePng(await readFile(paths.attentionPng)).width).toBe(S * cellPixels(S));
          expect(await readFile(paths.attentionSvg, 'utf8')).toContain('layer 1, query head 3 (kv head 1)');
          expect(await readFile(paths.ropeSvg, 'utf8')).toMatch(/^<svg /);
          await rm(dir, { recursive: true });
        });
    });
  }

  it("reproduces Meta's reference logits and greedy tokens on the fixture's own prompt", async () => {
    const file = await openSafetensors(fixture('tiny-llama3-gqa/expected.safetensors'));
    const read = async (name: string) => new Uint8Array(await file.read(name)).buffer;
    const ids = [...new Int32Array(await read('input_ids'))];
    const logits = new Float32Array(await read('logits'));
    const greedy = [...new Int32Array(await read('greedy_ids'))];
    await file.close();
    const model = await loadLlama(fixture('tiny-llama3-gqa'));
    const given: TokenText = { ...text, encode: () => ids };
    const run = await runWalkthrough(model, given, {
      prompt: '(the fixture ids)',
      decodeSteps: STEPS,
      layer: 0,
      head: 0,
      log: new RecordingNarrator(),
    });
    model.dispose();
    let worst = 0;
    for (let i = 0; i < logits.length; i++) worst = Math.max(worst, Math.abs(run.logits[i]! - logits[i]!));
    expect(worst).toBeLessThanOrEqual(TOLERANCE); // two independent fp32 implementations (README: ~3.5e-6)
    expect(run.decode.tokens).toEqual(greedy.slice(0, STEPS + 1));
  });
});

describe('pictures without a model', () => {
  it('encode a PNG whose rows inflate to the right size', () => {
    const png = decodePng(attentionPng(new Float32Array([1, 0, 0.5, 0.5]), 2));
    expect(png.width).toBe(2 * cellPixels(2));
    expect(png.raw.length).toBe(png.height * (1 + png.width * 3));
  });

  it('escape token text in the SVG', () => {
    const svg = attentionSvg(new Float32Array([1]), ['<&">'], 'a "title" & <more>');
    checkXml(svg);
    expect(svg).not.toContain('<&');
  });

  it('end with the IEND chunk every PNG ends with', () => {
    const png = attentionPng(new Float32Array([0]), 1);
    // length 0, "IEND", and its CRC, a constant of the format
    expect([...png.subarray(-12)]).toEqual([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
  });
});
