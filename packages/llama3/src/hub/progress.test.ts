import { describe, expect, it } from 'vitest';
import { createProgressBar, formatProgress, formatSpeed } from './progress.js';

/** A stream that records what is written, and a clock the test moves. */
function recorder(isTTY: boolean) {
  const out: string[] = [];
  let ms = 0;
  const stream = { isTTY, write: (text: string) => out.push(text) };
  return { out, stream, now: () => ms, advance: (by: number) => (ms += by) };
}

describe('formatProgress', () => {
  it('draws label, bar, percent, sizes in the unit of the total, and speed', () => {
    expect(formatProgress('model.safetensors', 1.2e9, 2.6e9, 35e6)).toBe(
      'model.safetensors  [#########...........]  46% 1.2/2.6 GB 35 MB/s',
    );
    expect(formatProgress('config.json', 700, 700)).toBe(
      'config.json  [####################] 100% 700/700 B',
    );
    expect(formatProgress('empty', 0, 0)).toBe('empty  [####################] 100% 0/0 B');
    expect(formatSpeed(2.5e6)).toBe('2.5 MB/s');
    expect(formatSpeed(512)).toBe('512 B/s');
  });
});

describe('createProgressBar', () => {
  it('redraws one terminal line with \\r, at most every redrawMs, ending with a newline', () => {
    const { out, stream, now, advance } = recorder(true);
    const bar = createProgressBar(stream, { now, redrawMs: 100 });
    const report = (loadedBytes: number) =>
      bar({ file: 'model.safetensors', loadedBytes, totalBytes: 4e6, fileIndex: 0, fileCount: 2 });
    report(0);
    advance(50);
    report(1e6); // too soon after the first draw: skipped
    advance(950);
    report(2e6);
    advance(1000);
    report(4e6);
    expect(out).toHaveLength(3);
    expect(out.every((line) => line.startsWith('\r'))).toBe(true);
    expect(out[0]).toContain('[1/2] model.safetensors');
    expect(out[1]).toContain(' 50% 2.0/4.0 MB 2.0 MB/s');
    expect(out[2]?.endsWith('100% 4.0/4.0 MB 2.0 MB/s\x1b[K\n')).toBe(true);
  });

  it('closes an unfinished line when the next file starts', () => {
    const { out, stream, now, advance } = recorder(true);
    const bar = createProgressBar(stream, { now });
    bar({ file: 'a', loadedBytes: 10, totalBytes: 100, fileIndex: 0, fileCount: 2 });
    advance(10);
    bar({ file: 'b', loadedBytes: 0, totalBytes: 50, fileIndex: 1, fileCount: 2 });
    expect(out[1]).toBe('\n');
    expect(out[2]).toContain('[2/2] b');
  });

  it('prints occasional plain lines when not on a terminal', () => {
    const { out, stream, now, advance } = recorder(false);
    const bar = createProgressBar(stream, { now, lineMs: 10_000 });
    for (let i = 0; i <= 30; i++) {
      bar({ label: 'download', loadedBytes: i * 1e6, totalBytes: 30e6 });
      advance(1000);
    }
    // One line every 10 s and one at the end; no \r anywhere.
    expect(out).toHaveLength(3);
    expect(out.every((line) => !line.includes('\r') && line.endsWith('\n'))).toBe(true);
    expect(out.at(-1)).toContain('100% 30.0/30.0 MB 1.0 MB/s');
  });

  it('shows model loading (one total, a tensor per report) as a single bar', () => {
    const { out, stream, now, advance } = recorder(false);
    const bar = createProgressBar(stream, { now });
    const tensors = ['embed', 'layers.0.wq', 'norm'];
    tensors.forEach((tensor, i) => {
      advance(100);
      bar({ tensor, loadedBytes: (i + 1) * 100, totalBytes: 300 });
    });
    bar({ tensor: 'norm', loadedBytes: 300, totalBytes: 300 }); // repeated final report: no second line
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^norm +\[#+\] 100% 300\/300 B 1\.0 kB\/s\n$/);
  });
});
