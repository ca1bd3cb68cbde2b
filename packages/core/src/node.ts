/**
 * `@proj/core/node`: the Node-only parts of the core (file access). Everything else is in `@proj/core`.
 * @packageDocumentation
 */
export { openFileSource } from './io/file-source.js';
export {
  openCheckpoint,
  openSafetensors,
  SAFETENSORS_FILE,
  writeSafetensorsFile,
} from './safetensors/files.js';
