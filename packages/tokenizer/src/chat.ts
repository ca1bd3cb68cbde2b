/**
 * Llama 3 instruct chat format:
 * `<|begin_of_text|>` then per message `<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>`,
 * then `<|start_header_id|>assistant<|end_header_id|>\n\n` for the model to answer after.
 * @module
 */

import {
  BEGIN_OF_TEXT,
  END_HEADER,
  END_OF_MESSAGE,
  END_OF_TEXT,
  END_OF_TURN,
  START_HEADER,
} from './special-tokens.js';
import type { Tokenizer } from './tokenizer.js';

/** One chat message. */
export interface ChatMessage {
  /** Who speaks: `system`, `user`, `assistant` (Llama 3.1 adds `ipython` for tool results). */
  role: string;
  /** What they say. Leading and trailing whitespace is trimmed, as Meta's format does. */
  content: string;
}

/** Options of {@link formatChat} and {@link encodeChat}. */
export interface ChatOptions {
  /** Start with `<|begin_of_text|>`. Default `true`; turn off when appending to an existing conversation. */
  bos?: boolean;
  /** End with the assistant header so the model writes the reply next. Default `true`. */
  assistantHeader?: boolean;
}

/**
 * The chat as text with special-token markers, for display and debugging. To feed a model use
 * {@link encodeChat}: encoding this string with `allowSpecial: true` would also turn special-token text that
 * users typed into control tokens.
 */
export function formatChat(messages: readonly ChatMessage[], options: ChatOptions = {}): string {
  let text = options.bos === false ? '' : BEGIN_OF_TEXT;
  for (const { role, content } of messages) {
    text += `${START_HEADER}${role}${END_HEADER}\n\n${content.trim()}${END_OF_TURN}`;
  }
  if (options.assistantHeader !== false) text += `${START_HEADER}assistant${END_HEADER}\n\n`;
  return text;
}

/**
 * Token ids of the chat in Llama 3's instruct format. Control tokens come from ids, never from parsing the
 * text, so a message containing `<|eot_id|>` cannot end its turn early: roles and contents are encoded as
 * plain text.
 */
export function encodeChat(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  options: ChatOptions = {},
): number[] {
  const startHeader = tokenizer.specialTokenId(START_HEADER);
  const endHeader = tokenizer.specialTokenId(END_HEADER);
  const endOfTurn = tokenizer.specialTokenId(END_OF_TURN);
  const ids: number[] = options.bos === false ? [] : [tokenizer.bosId];
  const header = (role: string): void => {
    ids.push(startHeader, ...tokenizer.encode(role), endHeader, ...tokenizer.encode('\n\n'));
  };
  for (const { role, content } of messages) {
    header(role);
    for (const id of tokenizer.encode(content.trim())) ids.push(id);
    ids.push(endOfTurn);
  }
  if (options.assistantHeader !== false) header('assistant');
  return ids;
}

/**
 * Ids that end the model's turn in chat: `<|eot_id|>`, `<|eom_id|>` (Llama 3.1 tool calls) and
 * `<|end_of_text|>`. Generation should stop at the first of them.
 */
export function chatStopTokens(tokenizer: Tokenizer): number[] {
  return [END_OF_TURN, END_OF_MESSAGE, END_OF_TEXT]
    .filter((name) => tokenizer.specialTokens.has(name))
    .map((name) => tokenizer.specialTokenId(name));
}
