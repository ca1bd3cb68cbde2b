/**
 * `@proj/core/node`: the Node-only parts of the core (file access). Everything else is in `@proj/core`.
 * @packageDocumentation
 */
export { openFileSource } from './io/file-source.js';
export { openCheckpoint, openSafetensors, writeSafetensorsFile } from './safetensors/files.js';
export { SAFETENSORS_FILE } from './safetensors/sharded.js'; // also exported by @proj/core
