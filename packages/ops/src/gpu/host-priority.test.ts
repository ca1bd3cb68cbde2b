import { execFile } from 'node:child_process';
import { getPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testDevice } from '../testing.js';

const DEVICE = fileURLToPath(new URL('./device.ts', import.meta.url));

/**
 * What a fresh process reports after creating a device: the flag, its main thread's nice value, and the
 * other threads' names and nice values (`llvmpipe-0: 0`), sorted.
 */
interface Report {
  lowered: boolean;
  main: number;
  others: string[];
}

// In a process of its own, since the change cannot be undone.
function createInChild(lowerHostPriority: boolean): Promise<Report> {
  const script = `
import { readdirSync, readFileSync } from 'node:fs';
import { createWebGpuDevice } from ${JSON.stringify(DEVICE)};
const gpu = await createWebGpuDevice({ lowerHostPriority: ${lowerHostPriority} });
const task = (tid, file) => readFileSync('/proc/self/task/' + tid + '/' + file, 'utf8');
const nice = (tid) => Number(task(tid, 'stat').split(') ')[1].split(' ')[16]);
const others = readdirSync('/proc/self/task')
  .filter((t) => t !== String(process.pid))
  .map((t) => task(t, 'comm').trim() + ': ' + nice(t))
  .sort();
console.log(JSON.stringify({ lowered: gpu.hostPriorityLowered, main: nice(process.pid), others }));
gpu.destroy();`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script],
      { timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Report);
      },
    );
  });
}

describe('lowerHostPriority', () => {
  it.runIf(process.platform === 'linux')(
    "lowers only the creating thread's priority, on software adapters, when asked",
    async ({ skip }) => {
      const probe = await testDevice();
      if (!probe) return skip('no WebGPU adapter');
      const software = probe.caps.software;
      probe.destroy();
      const asked = await createInChild(true);
      const notAsked = await createInChild(false);
      const inherited = getPriority(); // what a child starts with
      expect(notAsked).toMatchObject({ lowered: false, main: inherited });
      // A GPU runs its kernels on its own, so there is nothing to yield to.
      expect(asked).toMatchObject(
        software ? { lowered: true, main: 19 } : { lowered: false, main: inherited },
      );
      // Every other thread, the driver's workers among them (lavapipe's `llvmpipe-N`), keeps its priority.
      expect(asked.others).toEqual(notAsked.others);
    },
  );
});
