/**
 * WebGPU's numeric flags, spelled out so that code does not depend on the `GPUBufferUsage` globals (Node's
 * binding does not install them).
 * @module
 */

/** `GPUBufferUsage` flags. */
export const BufferUsage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  QUERY_RESOLVE: 0x200,
} as const;

/** `GPUMapMode.READ`. */
export const MAP_READ = 0x1;

/** `GPUMapMode.WRITE`. */
export const MAP_WRITE = 0x2;
