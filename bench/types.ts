/** One figure of a benchmark run. Names are stable so runs can be compared. */
export interface BenchResult {
  /** Stable dotted name, for example `tokenizer.encode.mb_s`. */
  name: string;
  value: number;
  unit: string;
  /** The same figure for the baseline measured in the same run, when there is one. */
  baseline?: number;
  /** `value / baseline` (or the inverse for lower-is-better units, as the name says). */
  ratio?: number;
  /** Free-form facts about the measurement (shapes, sizes, what the baseline is). */
  info?: string;
}

/** Options every benchmark suite takes. */
export interface BenchOptions {
  /** Only what runs in well under a minute. */
  quick: boolean;
}

/** A benchmark suite: measures and returns figures; prints nothing to stdout (stderr is fine). */
export type BenchSuite = (options: BenchOptions) => Promise<BenchResult[]>;
