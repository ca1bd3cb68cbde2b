/**
 * Lowering the priority of the thread that drives a software adapter, so that it does not take CPU time
 * from the driver's own threads (see {@link WebGpuDeviceOptions.lowerHostPriority}).
 * @module
 */

/** The nice value given to the calling thread: the lowest priority there is. */
const LOWEST = 19;

/**
 * Lowers the calling thread's scheduling priority to the lowest (nice 19), for good: raising it again needs
 * privileges. Linux only, where `setpriority` applies to the calling thread alone and the driver's worker
 * threads, started before, keep theirs; elsewhere it would lower the whole process, which gains nothing,
 * so there it does nothing. Returns whether it lowered it (a sandbox that forbids the call leaves the
 * priority as it was: the device works the same, only slower).
 */
export async function lowerCallingThreadPriority(): Promise<boolean> {
  if (globalThis.process?.platform !== 'linux') return false;
  const { setPriority } = await import('node:os');
  try {
    setPriority(LOWEST);
    return true;
  } catch {
    return false;
  }
}
