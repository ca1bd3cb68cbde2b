/**
 * `pnpm demo`: the whole pipeline on a fresh machine, with no downloads. A tiny Llama 3 with seeded random
 * weights (but the real 128256-token vocabulary, so the real tokenizer's ids fit) reads the classic prompt;
 * the demo prints the token ids, the shapes through the forward pass, the most likely next tokens, and a few
 * generated tokens with the speed.
 */
import { formatShape, type Tensor } from '@proj/core';
import { generate, type LlamaConfig, randomLlama } from '@proj/llama3';
import { softmax, topk } from '@proj/ops';
import { loadTokenizer } from '@proj/tokenizer';
import { numberArg, parseCommandLine } from './cli/args.js';
import { DEVICE_HELP, openDevice } from './cli/device.js';
import { EXIT, run } from './cli/run.js';

const USAGE = `usage: pnpm demo [--device auto|webgpu|cpu] [--seed N] [--max-new-tokens N]

Builds a tiny Llama 3 with random weights, tokenizes a prompt with the real Llama 3 tokenizer, shows the
shapes through the forward pass and the most likely next tokens, and generates a few tokens. Needs no
downloads. Random weights produce random text: this shows the machinery, not a language model.

${DEVICE_HELP}
--seed N          seed of the weights and of the sampler (default 42)
--max-new-tokens N   tokens to generate (default 24)
-h, --help        this text`;

const PROMPT = 'the answer to the ultimate question of life, the universe, and everything is ';

/** Llama 3's shape in miniature: grouped-query attention, SwiGLU, tied embeddings, the real vocabulary. */
const TINY = {
  hiddenSize: 256,
  layers: 4,
  heads: 8,
  kvHeads: 2, // each key/value head serves 4 query heads
  headDim: 32,
  intermediateSize: 768,
  vocabSize: 128256, // Llama 3's, so the real tokenizer's ids fit
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  ropeScaling: null,
  tieWordEmbeddings: true,
  maxPositions: 1024,
  bosTokenId: 128000,
  eosTokenIds: [128001, 128009],
} as const satisfies LlamaConfig;

/** What each traced tensor is, in the order the forward pass emits them. */
const STAGES: Record<string, string> = {
  embed: 'one embedding row per token',
  'layer0.attn_norm_out': 'RMSNorm before attention',
  'layer0.q_rope': 'queries in heads, rotated by RoPE',
  'layer0.k_rope': 'keys: fewer heads (grouped-query attention)',
  'layer0.v': 'values',
  'layer0.attn_out': 'attention, projected back to the model width',
  'layer0.attn_residual': 'x + attention',
  'layer0.ffn_norm_out': 'RMSNorm before the feed-forward',
  'layer0.ffn_out': 'SwiGLU feed-forward',
  'layer0.out': "x + feed-forward: the block's output",
  final_norm_out: 'final RMSNorm, last position only',
};

function row(name: string, shape: readonly number[], what: string): string {
  return `  ${name.padEnd(22)} ${formatShape(shape).padEnd(14)} ${what}`;
}

function parameterCount(c: LlamaConfig): number {
  const attention = c.hiddenSize * c.headDim * (2 * c.heads + 2 * c.kvHeads);
  const ffn = 3 * c.hiddenSize * c.intermediateSize;
  const layer = attention + ffn + 2 * c.hiddenSize;
  const head = c.tieWordEmbeddings ? 0 : c.vocabSize * c.hiddenSize;
  return c.layers * layer + c.vocabSize * c.hiddenSize + head + c.hiddenSize;
}

async function main(): Promise<number> {
  const args = parseCommandLine(USAGE, {
    device: { type: 'string', default: 'auto' },
    seed: { type: 'string', default: '42' },
    'max-new-tokens': { type: 'string', default: '24' },
  });
  if (!args) return EXIT.ok;
  const seed = numberArg('seed', args.seed, { integer: true, min: 0 })!;
  const maxNewTokens = numberArg('max-new-tokens', args['max-new-tokens'], { integer: true, min: 0 })!;

  const device = await openDevice(args.device);
  process.on('SIGINT', () => {
    device.close();
    process.exit(EXIT.interrupted);
  });
  try {
    const c = TINY;
    console.log(`Llama 3 demo on ${device.name}`);
    console.log(
      'The weights are random (seeded), so the text will be random too: this shows the machinery.\n',
    );
    const params = (parameterCount(c) / 1e6).toFixed(1);
    console.log(
      `model: ${c.layers} layers, width D=${c.hiddenSize}, ${c.heads} query / ${c.kvHeads} key-value heads of ` +
        `${c.headDim}, feed-forward ${c.intermediateSize}, vocabulary V=${c.vocabSize} (${params}M parameters, bf16, seed ${seed})`,
    );
    const model = randomLlama(c, { seed, device: device.device, contextLength: c.maxPositions });
    try {
      const tokenizer = await loadTokenizer(); // the built-in Llama 3 vocabulary
      const ids = tokenizer.encode(PROMPT, { bos: true });
      console.log(`\nprompt: ${JSON.stringify(PROMPT)}`);
      console.log(`token ids [${ids.length}]: ${ids.join(', ')}`);
      console.log(`tokens: ${ids.map((id) => JSON.stringify(tokenizer.decode([id]))).join(' ')}`);

      console.log('\nthe forward pass (S tokens, D width):');
      console.log(row('tokens', [ids.length], 'token ids'));
      const cache = model.createCache(ids.length);
      const trace = (name: string, t: Tensor) => {
        console.log(row(name, t.shape, STAGES[name] ?? ''));
        if (name === 'layer0.out' && c.layers > 1)
          console.log(row(`layers 1-${c.layers - 1}`, t.shape, 'the same block again, untraced'));
        t.dispose();
      };
      const logits = model.forward(ids, cache, { trace }); // [1, V]: scores for the token after the prompt
      cache.dispose();
      console.log(row('logits', logits.shape, 'a score per vocabulary entry, for the next token'));

      const probs = softmax(logits); // [1, V]
      const best = topk(probs, 5); // [1, 5] each
      const [p, top] = [await best.values.toArray(), await best.indices.toArray()];
      for (const t of [logits, probs, best.values, best.indices]) t.dispose();
      console.log('\nmost likely next tokens:');
      for (const [i, id] of top.entries())
        console.log(
          `  ${String(id).padStart(6)}  ${JSON.stringify(tokenizer.decode([id])).padEnd(20)} ${p[i]!.toFixed(5)}`,
        );

      console.log(`\ngenerating ${maxNewTokens} tokens (temperature 0.8, seed ${seed}):`);
      process.stdout.write(PROMPT);
      let count = 0;
      const start = performance.now();
      for await (const t of generate(model, ids, { tokenizer, maxNewTokens, temperature: 0.8, seed })) {
        if (t.id >= 0) count++;
        process.stdout.write(t.text);
      }
      const seconds = (performance.now() - start) / 1000;
      console.log(`\n${count} tokens in ${seconds.toFixed(2)} s: ${(count / seconds).toFixed(1)} tokens/s`);
    } finally {
      model.dispose();
    }
    console.log(`
Next:
  real weights (Meta's repos are gated: accept the license on huggingface.co, then make a token):
    HF_TOKEN=hf_... pnpm generate --model meta-llama/Llama-3.2-1B --prompt "${PROMPT.trim()}"
  or a checkpoint you already have:  pnpm generate --model ./Llama-3.2-1B --prompt "..."
  the math step by step, with the shapes:  pnpm walkthrough`);
    return EXIT.ok;
  } finally {
    device.close();
  }
}

run(main, 'Run pnpm demo --help for the options.');
