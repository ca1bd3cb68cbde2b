/**
 * A text progress bar for long byte counts: model downloads ({@link DownloadProgress}) and model loading
 * (`LoadProgress`). It knows nothing about either; it draws a label, loaded and total bytes, and a speed.
 * @module
 */

/** What the bar draws. Download and load progress objects both fit this shape. */
export interface ProgressReport {
  /** Bytes done so far in the current task (one file, or one whole load). */
  loadedBytes: number;
  /** Bytes in the current task. */
  totalBytes: number;
  /** Text shown before the bar; when absent, `file` or `tensor` is shown. */
  label?: string;
  /** The file being downloaded (download progress). */
  file?: string;
  /** The tensor just loaded (load progress): shown, but a new tensor does not start a new bar. */
  tensor?: string;
  /** Which file of `fileCount` this is (0-based); a new index starts a new bar. */
  fileIndex?: number;
  /** How many files the whole job has. */
  fileCount?: number;
}

/** Where the bar is written: `process.stderr` or anything with `write` (tests pass a recorder). */
export interface ProgressStream {
  /** Writes text as is. */
  write(text: string): unknown;
  /** On a terminal the bar redraws one line with `\r`; elsewhere (logs, pipes) it prints occasional lines. */
  isTTY?: boolean;
}

/** Options of {@link createProgressBar}. */
export interface ProgressBarOptions {
  /** The clock in milliseconds (tests pass a fake one; default `performance.now`). */
  now?: () => number;
  /** Least time between two redraws on a terminal, so per-chunk reports stay cheap (default 100 ms). */
  redrawMs?: number;
  /** Least time between two lines when not on a terminal (default 10 s): logs get a line, not a flood. */
  lineMs?: number;
}

const BAR_WIDTH = 20;
const LABEL_WIDTH = 40;

/** `n` bytes in `unit` (a power of 1000) with one decimal, or a whole number of bytes. */
function inUnit(n: number, unit: number): string {
  return unit === 1 ? String(Math.round(n)) : (n / unit).toFixed(1);
}

/** The decimal unit (as the hub's pages use) that suits `n` bytes. */
function unitFor(n: number): [number, string] {
  if (n >= 1e9) return [1e9, 'GB'];
  if (n >= 1e6) return [1e6, 'MB'];
  if (n >= 1e3) return [1e3, 'kB'];
  return [1, 'B'];
}

/** A speed such as `35 MB/s` or `2.5 MB/s`. */
export function formatSpeed(bytesPerSecond: number): string {
  const [unit, name] = unitFor(bytesPerSecond);
  const value = bytesPerSecond / unit;
  return `${value >= 10 || unit === 1 ? Math.round(value) : value.toFixed(1)} ${name}/s`;
}

/** Shortens a label to `width` characters, keeping its end (the end of a path names the file). */
function fitLabel(label: string, width: number): string {
  return label.length <= width ? label.padEnd(width) : `…${label.slice(label.length - width + 1)}`;
}

/**
 * One line of progress: `label  [#########...........]  46% 1.2/2.6 GB 35 MB/s`. The speed is left out
 * when unknown (at the first report of a task).
 * @example
 * ```ts
 * import { formatProgress } from '@proj/llama3';
 * const line = formatProgress('model.safetensors', 1.2e9, 2.6e9, 35e6);
 * console.log(line); // model.safetensors  [#########...........]  46% 1.2/2.6 GB 35 MB/s
 * ```
 */
export function formatProgress(
  label: string,
  loaded: number,
  total: number,
  bytesPerSecond?: number,
): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, loaded / total)) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = '#'.repeat(filled) + '.'.repeat(BAR_WIDTH - filled);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const [unit, name] = unitFor(total);
  const speed = bytesPerSecond === undefined ? '' : ` ${formatSpeed(bytesPerSecond)}`;
  return `${label}  [${bar}] ${percent} ${inUnit(loaded, unit)}/${inUnit(total, unit)} ${name}${speed}`;
}

/** The label a report is drawn with: its own, or its file or tensor, with `[i/n]` when it counts files. */
function labelOf(report: ProgressReport): string {
  const name = report.label ?? report.file ?? report.tensor ?? '';
  const counter =
    report.fileIndex !== undefined && report.fileCount !== undefined
      ? `[${report.fileIndex + 1}/${report.fileCount}] `
      : '';
  return fitLabel(counter + name, LABEL_WIDTH);
}

/**
 * A progress callback that draws a bar on `stream`: on a terminal one line redrawn in place (at most every
 * `redrawMs`, always at the end of a task), elsewhere a plain line every `lineMs` and one when a task ends.
 * A task is one bar: a new one starts when `fileIndex` or `totalBytes` changes or `loadedBytes` goes back.
 * @example
 * ```ts
 * // doc-example: no-run (downloads a model)
 * import { createProgressBar, resolveModel } from '@proj/llama3';
 * const onProgress = createProgressBar();
 * await resolveModel('meta-llama/Llama-3.2-1B', { onProgress });
 * ```
 */
export function createProgressBar(
  stream: ProgressStream = process.stderr,
  options: ProgressBarOptions = {},
): (report: ProgressReport) => void {
  const now = options.now ?? (() => performance.now());
  const redrawMs = options.redrawMs ?? 100;
  const lineMs = options.lineMs ?? 10_000;
  const tty = stream.isTTY === true;
  // The current task: where and when it started (for the speed), and what was last drawn.
  let task:
    | {
        index?: number;
        total: number;
        startBytes: number;
        startMs: number;
        lastBytes: number;
        ended: boolean;
      }
    | undefined;
  let lastDrawMs = Number.NEGATIVE_INFINITY;
  let lineOpen = false; // a terminal line was drawn without its closing newline

  return (report) => {
    const t = now();
    const isNew =
      task === undefined ||
      report.fileIndex !== task.index ||
      report.totalBytes !== task.total ||
      report.loadedBytes < task.lastBytes;
    if (isNew) {
      if (lineOpen) stream.write('\n');
      lineOpen = false;
      task = {
        index: report.fileIndex,
        total: report.totalBytes,
        startBytes: report.loadedBytes,
        startMs: t,
        lastBytes: report.loadedBytes,
        ended: false,
      };
      lastDrawMs = Number.NEGATIVE_INFINITY;
    }
    const current = task!;
    current.lastBytes = report.loadedBytes;
    const done = report.loadedBytes >= report.totalBytes;
    if (current.ended) return; // a repeated final report: the task's last line is already out
    if (!done && t - lastDrawMs < (tty ? redrawMs : lineMs)) return;
    // Non-terminals skip the task's first report: a line saying 0% says nothing a log reader needs.
    if (!tty && !done && isNew) {
      lastDrawMs = t;
      return;
    }
    lastDrawMs = t;
    current.ended = done;
    const seconds = (t - current.startMs) / 1000;
    const speed = seconds > 0 ? (report.loadedBytes - current.startBytes) / seconds : undefined;
    const line = formatProgress(labelOf(report), report.loadedBytes, report.totalBytes, speed);
    if (tty) {
      // \x1b[K clears what a longer previous line left behind.
      stream.write(`\r${line}\x1b[K${done ? '\n' : ''}`);
      lineOpen = !done;
    } else {
      stream.write(`${line}\n`);
    }
  };
}
