/**
 * A deterministic ~2 MB English text for the encode benchmark, built from prose already on disk (there is
 * no network here): first every Markdown file (READMEs, changelogs, licenses, docs) under the repository's
 * `node_modules/.pnpm/`, in sorted path order, skipping files with more than 1% non-ASCII chars (the
 * translated READMEs); then the doc comments of `@types/node` (Node's API documentation in prose) and of
 * TypeScript's `lib/*.d.ts` (the JavaScript and DOM API documentation), in sorted file order, one comment line
 * per line. The lockfile pins every package version, so the text is the same on every checkout. If the
 * sources ever fall short, the text is repeated to size and the result says so.
 * @module
 */

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Every file under `dir` whose name ends with `suffix`, sorted, following no symlinks. */
function filesUnder(dir: string, suffix: string): string[] {
  const out: string[] = [];
  const walk = (at: string): void => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(at, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith(suffix)) out.push(path);
    }
  };
  walk(dir);
  return out.sort();
}

function mostlyAscii(text: string): boolean {
  let other = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) other++;
  return other <= text.length * 0.01;
}

/** The benchmark text, cut to `chars` UTF-16 units, and a line describing where it came from. */
export function englishText(chars: number): { text: string; source: string } {
  const parts: string[] = [];
  let length = 0;
  let markdown = 0;
  let comments = 0;
  for (const file of filesUnder(join(REPO_ROOT, 'node_modules', '.pnpm'), '.md')) {
    if (length >= chars) break;
    const text = readFileSync(file, 'utf8');
    if (!mostlyAscii(text)) continue;
    parts.push(text);
    length += text.length + 1;
    markdown++;
  }
  const commented = [
    ...filesUnder(join(REPO_ROOT, 'node_modules', '@types', 'node'), '.d.ts'),
    ...filesUnder(join(REPO_ROOT, 'node_modules', 'typescript', 'lib'), '.d.ts'),
  ];
  for (const file of commented) {
    if (length >= chars) break;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const match = /^\s*\*(?: (.*))?$/.exec(line);
      if (match === null) continue;
      parts.push(match[1] ?? '');
      length += (match[1]?.length ?? 0) + 1;
    }
    comments++;
  }
  let text = parts.join('\n');
  let source = `${markdown} Markdown files from node_modules/.pnpm + doc comments of ${comments} .d.ts files (@types/node, typescript/lib)`;
  if (text.length === 0) throw new Error('no English text found under node_modules (run pnpm install)');
  if (text.length < chars) {
    source += ` (only ${text.length} chars found: repeated to size)`;
    text = text.repeat(Math.ceil(chars / text.length));
  }
  text = text.slice(0, chars);
  if (/[\ud800-\udbff]$/.test(text)) text = text.slice(0, -1);
  return { text, source };
}
