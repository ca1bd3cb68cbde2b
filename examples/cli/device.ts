/**
 * `--device auto|webgpu|cpu`: where the model runs. `auto` takes WebGPU and falls back to the CPU (with a
 * one-line note) when there is no adapter. A WebGPU device must be destroyed before the program ends: Dawn
 * keeps Node alive until it is.
 * @module
 */
import { cpu, type Device } from '@proj/core';
import { createWebGpuDevice, NoAdapterError, type WebGpuDevice } from '@proj/ops';
import { UsageError } from './args.js';

/** The values `--device` takes. */
export const DEVICE_CHOICES = ['auto', 'webgpu', 'cpu'] as const;

/** The `--device` line of a usage text. */
export const DEVICE_HELP =
  '--device auto|webgpu|cpu   where to run (default auto: WebGPU, or the CPU when there is no adapter)';

/** A device and how to let go of it. */
export interface OpenDevice {
  /** Where tensors go. */
  device: Device;
  /** `webgpu (<adapter>)` or `cpu`, for the first lines a program prints. */
  name: string;
  /** Destroys the WebGPU device (so Node can exit); safe to call twice. */
  close(): void;
}

/** Opens the device `--device` asks for; `note` receives the line that says `auto` fell back to the CPU. */
export async function openDevice(
  choice = 'auto',
  note: (line: string) => void = (line) => console.error(line),
): Promise<OpenDevice> {
  if (!(DEVICE_CHOICES as readonly string[]).includes(choice)) {
    throw new UsageError(`--device must be one of ${DEVICE_CHOICES.join(', ')}, got '${choice}'`);
  }
  if (choice === 'cpu') return { device: cpu, name: 'cpu', close: () => {} };
  let gpu: WebGpuDevice;
  try {
    // These programs exist to run the model: on a software adapter their thread yields to the driver's.
    gpu = await createWebGpuDevice({ lowerHostPriority: true });
  } catch (error) {
    if (choice === 'auto' && error instanceof NoAdapterError) {
      note(
        'note: no WebGPU adapter, so running on the CPU (slow); for WebGPU install a Vulkan driver (no GPU: mesa-vulkan-drivers)',
      );
      return { device: cpu, name: 'cpu', close: () => {} };
    }
    throw error;
  }
  let open = true;
  return {
    device: gpu,
    name: `webgpu (${gpu.description})`,
    close: () => {
      if (open) gpu.destroy();
      open = false;
    },
  };
}
