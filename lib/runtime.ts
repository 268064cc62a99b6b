// What is running: the binary, the device, thread count, GPU memory.
import * as os from 'os';
import { cudaVersionString } from './native/cuda-status';
import { findCpuBinary, findCudaBinary, probeCudaBinary, type LoadReport } from './native/loader';
import { loadReport, native } from './native';
import type { CudaMemoryStats, HostMemoryStats } from './native/binding';

export { loadReport };
export type { LoadReport };

/** 'cuda' when the CUDA binary loaded and a device works, else 'cpu'. */
export function defaultDevice(): 'cpu' | 'cuda' {
  return loadReport().variant;
}

export function numThreads(): number {
  return native().numThreads();
}

/** Resizes the CPU thread pool (VALR_NUM_THREADS sets the starting size). */
export function setNumThreads(n: number): void {
  native().setNumThreads(n);
}

/** GB/s of a multithreaded host memcpy (read + write), the ceiling for memory-bound kernels. */
export function copyBandwidth(bytes = 256 << 20, iterations = 5): number {
  return native().copyBandwidth(bytes, iterations);
}

/** CPU tensor memory: bytes in use, peak, and freed large blocks cached for reuse. */
export function hostMemoryStats(): HostMemoryStats {
  return native().hostMemoryStats();
}

/** Returns the cached host blocks to the system. */
export function hostEmptyCache(): void {
  native().hostEmptyCache();
}

export function cudaMemoryStats(device = 0): CudaMemoryStats {
  return native().cudaMemoryStats(device);
}

export function cudaEmptyCache(device = 0): void {
  native().cudaEmptyCache(device);
}

export function cudaSynchronize(device = 0): void {
  native().cudaSynchronize(device);
}

/** Everything `valr doctor` prints, as data. */
export function doctorReport(): Record<string, unknown> {
  const report = loadReport();
  // Probe the CUDA binary even when the CPU one was chosen, to say why.
  const cuda = report.variant === 'cuda' ? report.cuda : probeCudaBinary(report.cudaBinary ?? findCudaBinary());
  const p = cuda.probe;
  return {
    package: require('../package.json').version,
    node: process.version,
    napi: process.versions.napi,
    platform: `${process.platform}-${process.arch}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    mode: report.mode,
    loaded: { variant: report.variant, path: report.path, reason: report.reason },
    binaries: { cpu: report.cpuBinary ?? findCpuBinary(), cuda: report.cudaBinary ?? findCudaBinary() },
    threads: numThreads(),
    env: {
      VALR_DEVICE: process.env.VALR_DEVICE ?? null,
      VALR_NUM_THREADS: process.env.VALR_NUM_THREADS ?? null,
      CUDA_VISIBLE_DEVICES: process.env.CUDA_VISIBLE_DEVICES ?? null,
    },
    cuda: {
      status: cuda.kind,
      message: cuda.message,
      runtime: p ? cudaVersionString(p.runtimeVersion) : null,
      driver: p ? cudaVersionString(p.driverVersion) : null,
      architectures: p?.compiledArchitectures ?? null,
      devices: p?.devices ?? [],
    },
  };
}
