/**
 * The page's script: wires the form of `index.html` to {@link runInBrowser}. Built for the browser by
 * `serve.ts` (`pnpm browser`).
 * @module
 */
import { runInBrowser } from './app.js';

const form = document.querySelector('form')!;
const prompt = document.querySelector<HTMLTextAreaElement>('#prompt')!;
const output = document.querySelector<HTMLPreElement>('#output')!;
const status = document.querySelector<HTMLParagraphElement>('#status')!;
const button = form.querySelector('button')!;

form.addEventListener('submit', (event) => {
  event.preventDefault();
  button.disabled = true;
  output.textContent = prompt.value;
  runInBrowser({
    modelUrl: new URL('model/', location.href).href,
    prompt: prompt.value,
    onText: (text) => {
      output.textContent += text;
    },
    onStatus: (line) => {
      status.textContent = line;
    },
  })
    .then((r) => {
      status.textContent = `${r.ids.length} tokens, ${r.tokensPerSecond.toFixed(1)} tokens/s on ${r.adapter}`;
    })
    .catch((error: Error) => {
      status.textContent = `error: ${error.message}`;
    })
    .finally(() => {
      button.disabled = false;
    });
});
