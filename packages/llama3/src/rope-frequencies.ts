/**
 * RoPE's inverse frequencies, computed once on the host: `theta^(-2i/d)` for each pair of dims, with
 * Llama 3.1's scaling when the config asks for it. The op set takes these as input, so the kernel never
 * knows which model it serves.
 * @module
 */
import type { LlamaConfig } from './config.js';

/**
 * `inv_freq[i] = 1 / theta^(2i / headDim)`, then (Llama 3.1/3.2) long wavelengths are divided by `factor`,
 * short ones kept, and the band between smoothly interpolated, exactly as Meta's `apply_scaling`.
 * Computed in f64 and rounded to f32 once.
 */
export function ropeInverseFrequencies(
  config: Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
): Float32Array {
  const half = config.headDim / 2;
  const out = new Float32Array(half);
  const s = config.ropeScaling;
  for (let i = 0; i < half; i++) {
    // Meta computes the base frequencies in float32 (torch.arange(...).float() / dim), then scales them.
    const base = Math.fround(1 / Math.fround(config.ropeTheta ** Math.fround((2 * i) / config.headDim)));
    if (!s) {
      out[i] = base;
      continue;
    }
    const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
    const wavelen = (2 * Math.PI) / base;
    if (wavelen < highFreqWavelen) out[i] = base;
    else if (wavelen > lowFreqWavelen) out[i] = base / s.factor;
    else {
      const smooth =
        (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = (1 - smooth) * (base / s.factor) + smooth * base;
    }
  }
  return out;
}
