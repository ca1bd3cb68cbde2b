/**
 * Model download from the Hugging Face hub into the cache the Python tools share, and a text progress bar.
 * @module
 */
export { cachedSnapshot, hubCacheDir, repoCacheDir } from './cache.js';
export { type BlobDownload, downloadBlob } from './download.js';
export * from './progress.js';
export * from './resolve.js';
