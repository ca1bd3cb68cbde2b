/**
 * Browser-safe I/O building blocks. The Node file source is exported from `@proj/core/node`.
 * @module
 */
export * from './byte-source.js';
