/**
 * The page's script: wires the form of `index.html` to {@link runInBrowser}. Built for the browser by
 * `server.ts` (`pnpm browser`). `?prompt=...&tokens=N&run` in the address fills the form and runs it at
 * once; the outcome is also left as JSON in `#result`'s `data-result` (what the headless-browser test reads).
 * @module
 */
import { runInBrowser } from './app.js';

const form = document.querySelector('form')!;
const prompt = document.querySelector<HTMLTextAreaElement>('#prompt')!;
const output = document.querySelector<HTMLPreElement>('#output')!;
const status = document.querySelector<HTMLParagraphElement>('#status')!;
const result = document.querySelector<HTMLDivElement>('#result')!;
const button = form.querySelector('button')!;
const query = new URLSearchParams(location.search);

async function generate(): Promise<void> {
  button.disabled = true;
  output.textContent = prompt.value;
  try {
    const r = await runInBrowser({
      modelUrl: new URL('model/', location.href).href,
      prompt: prompt.value,
      maxNewTokens: Number(query.get('tokens') ?? 32),
      onText: (text) => {
        output.textContent += text;
      },
      onStatus: (line) => {
        status.textContent = line;
      },
    });
    status.textContent = `${r.ids.length} tokens, ${r.tokensPerSecond.toFixed(1)} tokens/s on ${r.adapter}`;
    result.dataset.result = JSON.stringify(r);
  } catch (error) {
    status.textContent = `error: ${(error as Error).message}`;
    result.dataset.result = JSON.stringify({ error: (error as Error).message });
  } finally {
    button.disabled = false;
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void generate();
});
const asked = query.get('prompt');
if (asked !== null) prompt.value = asked;
if (query.has('run')) void generate();
