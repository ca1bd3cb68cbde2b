/**
 * Browser-safe I/O building blocks: byte sources over memory and over HTTP. The Node file source is
 * exported from `@proj/core/node`.
 * @module
 */
export * from './byte-source.js';
export * from './http-source.js';
