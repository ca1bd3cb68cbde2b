/**
 * Llama 3's special (control) tokens: names, ids, and the chat stop tokens.
 *
 * Meta's `tokenizer.model` holds only the 128000 mergeable ranks; Meta's `tokenizer.py` appends 256 special
 * tokens after them. Llama 3.1 gave two of the reserved slots a meaning (128008 `<|eom_id|>`, 128010
 * `<|python_tag|>`) without changing any id, so one table serves both: those two are named the 3.1 way and
 * their Llama 3.0 names stay accepted as aliases.
 * @module
 */

/** How many special tokens Llama 3 appends after the mergeable ranks. */
export const LLAMA3_SPECIAL_TOKEN_COUNT = 256;

/** `<|begin_of_text|>`: starts every prompt (BOS). */
export const BEGIN_OF_TEXT = '<|begin_of_text|>';
/** `<|end_of_text|>`: ends a document (EOS) and stops generation. */
export const END_OF_TEXT = '<|end_of_text|>';
/** `<|start_header_id|>`: opens a chat message header (the role name follows). */
export const START_HEADER = '<|start_header_id|>';
/** `<|end_header_id|>`: closes a chat message header. */
export const END_HEADER = '<|end_header_id|>';
/** `<|eot_id|>`: ends a chat turn; instruct models stop on it. */
export const END_OF_TURN = '<|eot_id|>';
/** `<|eom_id|>`: Llama 3.1's end of a message that expects a tool result; also a stop token. */
export const END_OF_MESSAGE = '<|eom_id|>';
/** `<|python_tag|>`: Llama 3.1's marker for a tool call. */
export const PYTHON_TAG = '<|python_tag|>';

/**
 * The Llama 3.0 names of the two slots that Llama 3.1 named: each maps the 3.1 name to the 3.0 one, which is
 * kept as an alias so files of either generation encode the same text to the same ids.
 */
export const LLAMA31_RENAMES: ReadonlyArray<readonly [name: string, oldName: string]> = [
  [END_OF_MESSAGE, '<|reserved_special_token_4|>'],
  [PYTHON_TAG, '<|reserved_special_token_5|>'],
];

/**
 * The 256 special token names in id order from 128000, as Meta's `tokenizer.py` (Llama 3) lists them, with
 * slots 128008 and 128010 under their Llama 3.1 names.
 */
export const LLAMA3_SPECIAL_TOKENS: readonly string[] = (() => {
  const names = [
    BEGIN_OF_TEXT,
    END_OF_TEXT,
    '<|reserved_special_token_0|>',
    '<|reserved_special_token_1|>',
    '<|reserved_special_token_2|>',
    '<|reserved_special_token_3|>',
    START_HEADER,
    END_HEADER,
    END_OF_MESSAGE,
    END_OF_TURN,
    PYTHON_TAG,
  ];
  for (let i = 6; names.length < LLAMA3_SPECIAL_TOKEN_COUNT; i++)
    names.push(`<|reserved_special_token_${i}|>`);
  return names;
})();
