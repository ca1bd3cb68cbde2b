import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { describeWithShared, fixture } from '../../../../test-support/fixtures.js';
import { viewAs } from '../dtype.js';
import { toCoreDType } from './dtypes.js';
import { openSafetensors } from './files.js';
import { serializeSafetensors } from './writer.js';

const MODELS = ['tiny-llama3-gqa', 'tiny-llama32-tied', 'stories260K'] as const;

interface Expected {
  input_ids: number[];
  greedy_ids: number[] | string;
  shapes: Record<string, number[]>;
  weights_sha256: string;
  config: {
    hidden_size: number;
    vocab_size: number;
    num_hidden_layers: number;
    tie_word_embeddings: boolean;
  };
}

async function expectedJson(model: string): Promise<Expected> {
  return JSON.parse(await readFile(fixture(`${model}/expected.json`), 'utf8')) as Expected;
}

describeWithShared('safetensors fixtures', () => {
  for (const model of MODELS) {
    it(`${model}: expected.safetensors matches expected.json`, async () => {
      const expected = await expectedJson(model);
      const file = await openSafetensors(fixture(`${model}/expected.safetensors`));
      try {
        expect(new Set(file.names())).toEqual(new Set(Object.keys(expected.shapes)));
        for (const [name, shape] of Object.entries(expected.shapes)) {
          expect(file.info(name).shape, name).toEqual(shape);
        }
        const ids = file.info('input_ids');
        expect(ids.dtype).toBe('I32');
        expect([...viewAs('i32', await file.read('input_ids'))]).toEqual(expected.input_ids);
        expect(file.info('logits').dtype).toBe('F32');
        const logits = viewAs('f32', await file.read('logits'));
        expect(logits.length).toBe(expected.shapes.logits!.reduce((a, b) => a * b, 1));
        expect(logits.every(Number.isFinite)).toBe(true);
      } finally {
        await file.close();
      }
    });

    it(`${model}: model.safetensors has the config's tensors and re-serializes byte for byte`, async () => {
      const expected = await expectedJson(model);
      const { hidden_size: hidden, vocab_size: vocab, num_hidden_layers: layers } = expected.config;
      const path = fixture(`${model}/model.safetensors`);
      const file = await openSafetensors(path);
      try {
        expect(file.metadata.format).toBe('pt');
        expect(file.info('model.embed_tokens.weight').shape).toEqual([vocab, hidden]);
        expect(file.has('lm_head.weight')).toBe(!expected.config.tie_word_embeddings);
        expect(file.names().length).toBe(layers * 9 + 2 + (expected.config.tie_word_embeddings ? 0 : 1));
        const dtype = model === 'stories260K' ? 'F32' : 'BF16';
        for (const name of file.names()) expect(file.info(name).dtype).toBe(dtype);
        const entries = [];
        for (const name of file.names()) {
          const info = file.info(name);
          entries.push({
            name,
            dtype: toCoreDType(info.dtype),
            shape: info.shape,
            data: await file.read(name),
          });
        }
        // Our writer lays files out as the reference does, so the fixture comes back identical.
        const bytes = serializeSafetensors(entries, file.metadata);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(expected.weights_sha256);
      } finally {
        await file.close();
      }
    });
  }

  it('tiny-llama3-gqa: the prompt starts with BOS 128000 and norms are near 1', async () => {
    const file = await openSafetensors(fixture('tiny-llama3-gqa/expected.safetensors'));
    const ids = viewAs('i32', await file.read('input_ids'));
    expect(ids.length).toBe(11);
    expect(ids[0]).toBe(128000);
    await file.close();
    const model = await openSafetensors(fixture('tiny-llama3-gqa/model.safetensors'));
    const norm = viewAs('bf16', await model.read('model.norm.weight'));
    expect(norm.length).toBe(64);
    // bf16 bit patterns of values 1 + N(0, 0.1^2): exponent field of 1.0 (0x3f80) or just below it.
    for (const bits of norm) expect(bits >>> 7 === 0x7f || bits >>> 7 === 0x7e).toBe(true);
    await model.close();
  });
});
