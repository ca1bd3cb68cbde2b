/**
 * Browser-safe safetensors reading and writing, from memory or from a web server (`openHttpCheckpoint`).
 * File-system helpers (`openSafetensors`, `openCheckpoint`, `writeSafetensorsFile`) are exported from
 * `@proj/core/node`.
 * @module
 */
export * from './dtypes.js';
export * from './errors.js';
export * from './header.js';
export * from './http.js';
export * from './reader.js';
export * from './sharded.js';
export * from './writer.js';
