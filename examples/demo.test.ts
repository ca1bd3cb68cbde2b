/** `pnpm demo` end to end: no downloads, the real tokenizer's ids, the shapes, and the pointers onward. */
import { describe, expect, it } from 'vitest';
import { runToEnd } from './cli/program.fixture.js';

describe('pnpm demo', () => {
  it('runs a random tiny Llama 3 end to end and says the text is random', async () => {
    const r = await runToEnd('demo.ts', ['--max-new-tokens', '4']);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/random/i);
    // "<|begin_of_text|>the answer to ..." with the real Llama 3 vocabulary.
    expect(out).toContain('token ids [17]: 128000, 1820, 4320, 311, 279, 17139, 3488');
    expect(out).toMatch(/embed +\[17, 256\]/);
    expect(out).toMatch(/layer0\.q_rope +\[17, 8, 32\]/);
    expect(out).toMatch(/logits +\[1, 128256\]/);
    expect(out).toMatch(/most likely next tokens:\n( +\d+ +".*" +0\.\d{5}\n){5}/);
    expect(out).toMatch(/4 tokens in [\d.]+ s: [\d.]+ tokens\/s/);
    expect(out).toContain('pnpm generate --model meta-llama/Llama-3.2-1B');
    expect(out).toContain('pnpm walkthrough');
  });

  it('gives the same tokens on the CPU as on the default device', async () => {
    const [auto, cpu] = [
      await runToEnd('demo.ts', ['--max-new-tokens', '3']),
      await runToEnd('demo.ts', ['--max-new-tokens', '3', '--device', 'cpu']),
    ];
    const ranked = (out: string) =>
      out
        .split('most likely next tokens:')[1]
        ?.split('\n')
        .slice(1, 4)
        .map((l) => l.trim().split(/ +/)[0]);
    expect(ranked(cpu.stdout)).toEqual(ranked(auto.stdout));
  });
});
