/**
 * `pnpm chat --model <dir or hub id>`: a terminal chat with a Llama 3 instruct model. The conversation is
 * kept across turns (the oldest turns are dropped when it outgrows the context), and so is its KV cache, so
 * that each turn runs only its new message; answers stream as they are generated. Ctrl-C during an answer stops that answer; at the prompt it quits, as do `/exit` and end of input.
 */
import { createInterface, type Interface } from 'node:readline';
import { chat, type GenerateOptions, type Llama, PromptCache } from '@proj/llama3';
import { type ChatMessage, encodeChat, type Tokenizer } from '@proj/tokenizer';
import { numberArg, parseCommandLine, UsageError } from './cli/args.js';
import { DEVICE_HELP, openDevice } from './cli/device.js';
import { findModel, loadModel, MODEL_HELP, openTokenizer } from './cli/model.js';
import { SAMPLING_ARGS, samplingOptions, yieldToEventLoop } from './cli/options.js';
import { EXIT, run } from './cli/run.js';

const USAGE = `usage: pnpm chat --model DIR|ID [--system TEXT] [options]

Chats with a Llama 3 instruct model (such as meta-llama/Llama-3.2-1B-Instruct) in the Llama 3 chat format.
Type a message and press Enter. /reset clears the conversation; /exit, end of input (Ctrl-D) or Ctrl-C at
the prompt quits; Ctrl-C while the model answers stops the answer.

${MODEL_HELP}
--system TEXT     a system prompt, kept at the start of the conversation
--max-new-tokens N   longest answer in tokens (default 512)
--temperature T   0 is greedy; default 0.6
--top-k K, --top-p P, --min-p P, --repetition-penalty R   sampling filters (see pnpm generate --help)
--seed N          seed of the sampler (default 0; each turn uses the next seed)
${DEVICE_HELP}
-h, --help        this text

Example:
  HF_TOKEN=hf_... pnpm chat --model meta-llama/Llama-3.2-1B-Instruct --system "Answer in one sentence."`;

/** Lines typed by the user, queued while the model is answering; `undefined` once input has ended. */
class Lines {
  readonly #queue: string[] = [];
  #waiting: ((line: string | undefined) => void) | undefined;
  #ended = false;

  constructor(rl: Interface) {
    rl.on('line', (line) => this.#push(line));
    rl.on('close', () => this.end());
  }

  #push(line: string): void {
    if (this.#waiting) this.#take()(line);
    else this.#queue.push(line);
  }

  #take(): (line: string | undefined) => void {
    const waiting = this.#waiting!;
    this.#waiting = undefined;
    return waiting;
  }

  /** No more lines: the one waiting gets `undefined`. */
  end(): void {
    this.#ended = true;
    if (this.#waiting) this.#take()(undefined);
  }

  /** The next line, or `undefined` at the end. */
  next(): Promise<string | undefined> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift());
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }
}

/**
 * Drops the oldest turns (never the system prompt or the newest message) until the conversation leaves
 * `room` positions free; false when even the newest message alone does not fit.
 */
function fitContext(messages: ChatMessage[], tokenizer: Tokenizer, model: Llama, room: number): boolean {
  const first = messages[0]?.role === 'system' ? 1 : 0;
  while (encodeChat(tokenizer, messages).length + room > model.contextLength) {
    if (messages.length - first <= 1) return false;
    messages.splice(first, 1);
    // Drop the reply with its question: the conversation goes on starting with a user turn.
    while (messages.length - first > 1 && messages[first]!.role !== 'user') messages.splice(first, 1);
  }
  return true;
}

/** Streams the model's answer to stdout; stops early (marked `[stopped]`) when `signal` aborts. */
async function streamAnswer(
  model: Llama,
  messages: readonly ChatMessage[],
  options: GenerateOptions & { tokenizer: Tokenizer },
  signal: AbortSignal,
): Promise<{ text: string; tokens: number; rate: number }> {
  let text = '';
  let tokens = 0;
  const start = performance.now();
  process.stdout.write('llama> ');
  try {
    for await (const t of chat(model, messages, { ...options, signal })) {
      if (t.id >= 0) tokens++;
      text += t.text;
      process.stdout.write(t.text);
      await yieldToEventLoop();
    }
    process.stdout.write('\n');
  } catch (error) {
    if (!signal.aborted) throw error;
    process.stdout.write(' [stopped]\n');
  }
  return { text, tokens, rate: tokens / ((performance.now() - start) / 1000) };
}

async function converse(
  model: Llama,
  tokenizer: Tokenizer,
  options: GenerateOptions,
  system: string | undefined,
): Promise<void> {
  const start: ChatMessage[] = system ? [{ role: 'system', content: system }] : [];
  const messages = [...start];
  const room = Math.min(options.maxNewTokens ?? 512, Math.floor(model.contextLength / 2));
  // The KV cache outlives each answer: a turn runs only its new message, not the conversation again.
  const promptCache = new PromptCache(model);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  const lines = new Lines(rl);
  let answering: AbortController | undefined;
  // On a terminal readline reads Ctrl-C as a key and reports it on `rl`; from a pipe it arrives as a signal.
  const interrupt = () => {
    if (answering) answering.abort();
    else lines.end();
  };
  rl.on('SIGINT', interrupt);
  process.on('SIGINT', interrupt);
  rl.setPrompt('you> ');
  try {
    for (let turn = 0; ; turn++) {
      rl.prompt();
      const line = (await lines.next())?.trim();
      if (line === undefined || line === '/exit') break;
      if (line === '') continue;
      if (line === '/reset') {
        messages.splice(0, messages.length, ...start);
        console.log('(conversation cleared)');
        continue;
      }
      messages.push({ role: 'user', content: line });
      if (!fitContext(messages, tokenizer, model, room)) {
        messages.pop();
        console.log(
          `(that message is too long for the ${model.contextLength}-token context; try a shorter one)`,
        );
        continue;
      }
      answering = new AbortController();
      const seed = (options.seed ?? 0) + turn;
      const answer = await streamAnswer(
        model,
        messages,
        { ...options, seed, tokenizer, promptCache },
        answering.signal,
      );
      answering = undefined;
      // The history keeps what the user saw, a stopped answer included.
      messages.push({ role: 'assistant', content: answer.text });
      const held = encodeChat(tokenizer, messages, { assistantHeader: false }).length;
      console.error(
        `(${answer.tokens} tokens at ${answer.rate.toFixed(1)} tokens/s; the conversation holds ${held} of ${model.contextLength} tokens)`,
      );
    }
  } finally {
    process.stdout.write('\n');
    process.off('SIGINT', interrupt);
    rl.close();
    promptCache.dispose();
  }
}

async function main(): Promise<number> {
  const args = parseCommandLine(USAGE, {
    model: { type: 'string' },
    system: { type: 'string' },
    'max-new-tokens': { type: 'string', default: '512' },
    ...SAMPLING_ARGS,
    device: { type: 'string', default: 'auto' },
    context: { type: 'string' },
  });
  if (!args) return EXIT.ok;
  if (!args.model) throw new UsageError('--model is required');
  const options: GenerateOptions = {
    maxNewTokens: numberArg('max-new-tokens', args['max-new-tokens'], { min: 1, integer: true })!,
    ...samplingOptions(args),
  };
  const contextLength = numberArg('context', args.context, { min: 2, integer: true });

  const dir = await findModel(args.model);
  const device = await openDevice(args.device);
  // Ctrl-C while loading quits at once (the chat installs its own handler once it runs).
  const quit = () => {
    device.close();
    process.exit(EXIT.interrupted);
  };
  process.on('SIGINT', quit);
  try {
    const model = await loadModel(dir, device, { contextLength });
    try {
      const tokenizer = await openTokenizer(dir, model);
      process.off('SIGINT', quit);
      console.error(
        'Type a message and press Enter. /reset clears the conversation, /exit or Ctrl-D quits; ' +
          'Ctrl-C stops an answer, or quits at the prompt.',
      );
      await converse(model, tokenizer, options, args.system);
    } finally {
      model.dispose();
    }
  } finally {
    process.off('SIGINT', quit);
    device.close();
  }
  return EXIT.ok;
}

run(main, 'Run pnpm chat --help for the options.');
