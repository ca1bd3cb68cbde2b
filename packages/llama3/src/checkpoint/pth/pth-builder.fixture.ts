/**
 * Test-only: assembles complete `.pth` files (zip + state-dict pickle + storage records) like torch.save's,
 * so tests and the fuzzer have checkpoints to break without needing the shared fixtures or Python.
 * @module
 */
import { stateDictPickle, type TensorSpec } from './pickle-writer.fixture.js';
import { buildZip, type ZipInput } from './zip-writer.fixture.js';

/** Options for `buildPth`. */
export interface PthOptions {
  /** The zip's top folder (torch uses the file name without extension). */
  prefix?: string;
  /** Use this pickle instead of one generated from the tensors. */
  pickle?: Uint8Array;
  /** Extra or replacement records (by name relative to the prefix). */
  records?: Record<string, Partial<ZipInput> & { data: Uint8Array }>;
  /** Leave out these records (relative names). */
  omit?: string[];
}

/** A `.pth` file holding `tensors`, whose storages are `storages[key]`. */
export function buildPth(
  tensors: readonly TensorSpec[],
  storages: Record<string, Uint8Array>,
  options: PthOptions = {},
): Uint8Array {
  const prefix = options.prefix ?? 'archive';
  const enc = new TextEncoder();
  const records: Record<string, Partial<ZipInput> & { data: Uint8Array }> = {
    'data.pkl': { data: options.pickle ?? stateDictPickle(tensors) },
    byteorder: { data: enc.encode('little') },
  };
  for (const [key, data] of Object.entries(storages)) records[`data/${key}`] = { data };
  records.version = { data: enc.encode('3\n') };
  Object.assign(records, options.records);
  const inputs = Object.entries(records)
    .filter(([name]) => !options.omit?.includes(name))
    .map(([name, r]) => ({ ...r, name: `${prefix}/${name}` }));
  return buildZip(inputs, { zip64: true });
}
