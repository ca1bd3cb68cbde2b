/**
 * The tour's narration: every step reports what went in, what came out and why, and the program prints it
 * the way the from-scratch tutorials do (`[17, 4096] -> [17, 128]`). The steps are also data, so the test
 * can check the shapes without parsing text.
 */
import { formatShape, type Shape } from '@proj/core';

/** One step of the tour. */
export interface Step {
  /** Stable name for tests (`q_head`, `scores`, ...). */
  key: string;
  /** What the step is, in a few words. */
  title: string;
  /** Shape of the main input. */
  input: Shape;
  /** Shape of the result. */
  output: Shape;
  /** What the step does and why, in a sentence or two. */
  why: string;
}

/** Receives each step as it happens, and free-form lines (tables, checks) between them. */
export interface Narrator {
  /** A step with its shapes. */
  step(step: Step): void;
  /** A line of text (a heading, a table row, a check). */
  say(line: string): void;
}

/** `[11, 64] -> [11, 16]`. */
export function arrow(input: Shape, output: Shape): string {
  return `${formatShape(input)} -> ${formatShape(output)}`;
}

/** The printed form of a step: a numbered title with its shapes, then the explanation, indented. */
export function formatStep(index: number, step: Step): string {
  const head = `${String(index).padStart(2)}. ${step.title}`;
  return `${head.padEnd(52)} ${arrow(step.input, step.output)}\n      ${step.why}`;
}

/** A narrator that prints to the console. */
export function consoleNarrator(print: (line: string) => void = console.log): Narrator {
  let index = 0;
  return {
    step: (step) => print(formatStep(++index, step)),
    say: (line) => print(line),
  };
}

/** A narrator that keeps everything, for tests (and prints nothing). */
export class RecordingNarrator implements Narrator {
  /** Every step, in order. */
  readonly steps: Step[] = [];
  /** Every line, steps formatted as printed. */
  readonly lines: string[] = [];
  step(step: Step): void {
    this.steps.push(step);
    this.lines.push(formatStep(this.steps.length, step));
  }
  say(line: string): void {
    this.lines.push(line);
  }
  /** The step named `key` (throws if there is none, so a test names what is missing). */
  get(key: string): Step {
    const found = this.steps.find((s) => s.key === key);
    if (!found) throw new Error(`no step '${key}' (have ${this.steps.map((s) => s.key).join(', ')})`);
    return found;
  }
}

/** A narrator that drops everything (for runs whose narration is not wanted, e.g. the no-mask rerun). */
export const silent: Narrator = { step: () => {}, say: () => {} };
