// Finds and loads the native addon. Two builds of the same sources exist: CPU-only
// and CUDA (which also holds every CPU kernel). Order: a local build (developers),
// then the prebuilt binaries shipped in the package. The CUDA binary is tried when
// a CUDA device may exist, probed, and replaced by the CPU one when it cannot run;
// CPU-only hosts stay quiet. VALR_DEVICE=cpu|cuda|auto and CUDA_VISIBLE_DEVICES=""
// are honoured. VALR_ADDON_PATH points at one .node file and skips the search.
import * as fs from 'fs';
import * as path from 'path';
import { ValrError, fail } from '../errors';
import type { BindingModule } from './binding';
import { classifyCudaProbe, type CudaStatus } from './cuda-status';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild: {
  path(dir: string): string;
  parseTags(file: string): { file: string; napi?: boolean; runtime?: string; abi?: string; libc?: string } | undefined;
  matchTags(runtime: string, abi: string): (tags: unknown) => boolean;
  compareTags(runtime: string): (a: unknown, b: unknown) => number;
} = require('node-gyp-build');

export type DeviceMode = 'auto' | 'cpu' | 'cuda';

export interface LoadReport {
  mode: DeviceMode;
  variant: 'cpu' | 'cuda';
  path: string;
  reason: string; // why this binary was chosen
  cuda: CudaStatus;
  cudaBinary: string | null;
  cpuBinary: string | null;
}

export const packageRoot = path.resolve(__dirname, '..', '..');
const platformDir = `${process.platform}-${process.arch}`;

function deviceMode(): DeviceMode {
  const raw = (process.env.VALR_DEVICE ?? 'auto').trim().toLowerCase();
  if (raw === '' || raw === 'auto') return 'auto';
  if (raw === 'cpu' || raw === 'cuda') return raw;
  return fail('ERR_VALR_DEVICE', `VALR_DEVICE must be 'cpu', 'cuda' or 'auto', got '${process.env.VALR_DEVICE}'`);
}

function cudaHiddenByEnv(): boolean {
  const v = process.env.CUDA_VISIBLE_DEVICES;
  return v !== undefined && (v.trim() === '' || v.trim() === '-1');
}

// Cheap signs of an NVIDIA driver; a false positive only costs one probe.
function cudaDeviceMayExist(): boolean {
  if (process.platform === 'win32') return true;
  return ['/dev/nvidiactl', '/dev/nvidia0', '/proc/driver/nvidia/version', '/dev/dxg'].some((p) => fs.existsSync(p));
}

export function findCpuBinary(root = packageRoot): string | null {
  const local = path.join(root, 'build', 'Release', 'valr.node');
  if (fs.existsSync(local)) return local;
  try {
    return nodeGypBuild.path(root); // build/Release|Debug, then prebuilds/<platform>-<arch> by tags
  } catch {
    return null;
  }
}

// The CUDA build lives beside the CPU one in a `cuda/` folder; prebuilds are chosen
// among prebuilds/<platform>-<arch>/cuda/*.node with node-gyp-build's own tag rules.
export function findCudaBinary(root = packageRoot): string | null {
  const local = path.join(root, 'build', 'Release', 'cuda', 'valr.node');
  if (fs.existsSync(local)) return local;
  const dir = path.join(root, 'prebuilds', platformDir, 'cuda');
  if (!fs.existsSync(dir)) return null;
  const runtime = 'node';
  const abi = process.versions.modules;
  const candidates = fs
    .readdirSync(dir)
    .map((f) => nodeGypBuild.parseTags(f))
    .filter((t): t is NonNullable<typeof t> => !!t)
    .filter(nodeGypBuild.matchTags(runtime, abi))
    .sort(nodeGypBuild.compareTags(runtime));
  return candidates.length ? path.join(dir, candidates[0].file) : null;
}

function requireAddon(file: string): BindingModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as BindingModule;
}

function noBinaryError(what: string): ValrError {
  return new ValrError(
    'ERR_VALR_NO_BINARY',
    `valr-node has no ${what} binary for ${platformDir} (Node ${process.version}, N-API ${process.versions.napi}). ` +
      `Build it from source: in a clone of the repository run 'npm install' (needs CMake or node-gyp and a C++17 compiler), ` +
      `or in your project run 'npm rebuild valr-node --foreground-scripts' after installing build tools.`,
  );
}

export function loadBinding(): { binding: BindingModule; report: LoadReport } {
  const mode = deviceMode();
  const override = process.env.VALR_ADDON_PATH;
  const cpuBinary = override ? null : findCpuBinary();
  const cudaBinary = override ? null : findCudaBinary();
  const disabled = (reason: string): CudaStatus => ({ kind: 'disabled', message: reason });

  if (override) {
    const binding = requireAddon(path.resolve(override));
    const cuda = binding.variant === 'cuda' ? classifyCudaProbe(binding.probeCuda()) : disabled('CPU binary');
    if (mode === 'cuda' && cuda.kind !== 'ok') fail('ERR_VALR_DEVICE', `VALR_DEVICE=cuda but CUDA is unavailable: ${cuda.message}`);
    const variant = binding.variant === 'cuda' && cuda.kind === 'ok' ? 'cuda' : 'cpu';
    return { binding, report: { mode, variant, path: override, reason: 'VALR_ADDON_PATH', cuda, cudaBinary, cpuBinary } };
  }

  const loadCpu = (reason: string, cuda: CudaStatus) => {
    // The CUDA binary holds the CPU kernels too: use it when it is the only one.
    const file = cpuBinary ?? cudaBinary;
    if (!file) throw noBinaryError('CPU');
    return { binding: requireAddon(file), report: { mode, variant: 'cpu' as const, path: file, reason, cuda, cudaBinary, cpuBinary } };
  };

  if (mode === 'cpu') return loadCpu('VALR_DEVICE=cpu', disabled('VALR_DEVICE=cpu'));
  if (cudaHiddenByEnv()) {
    if (mode === 'cuda') fail('ERR_VALR_DEVICE', 'VALR_DEVICE=cuda but CUDA_VISIBLE_DEVICES hides every device');
    return loadCpu('CUDA_VISIBLE_DEVICES is empty', disabled('CUDA_VISIBLE_DEVICES is empty'));
  }
  if (!cudaBinary) {
    if (mode === 'cuda') throw noBinaryError('CUDA');
    return loadCpu('no CUDA binary for this platform', { kind: 'no-binary', message: `no CUDA binary for ${platformDir}` });
  }
  if (mode === 'auto' && !cudaDeviceMayExist()) {
    return loadCpu('no NVIDIA driver on this host', { kind: 'no-driver', message: 'no NVIDIA device files on this host' });
  }

  const cudaBinding = requireAddon(cudaBinary);
  const status = classifyCudaProbe(cudaBinding.probeCuda());
  if (status.kind === 'ok') {
    return {
      binding: cudaBinding,
      report: { mode, variant: 'cuda', path: cudaBinary, reason: status.message, cuda: status, cudaBinary, cpuBinary },
    };
  }
  if (mode === 'cuda') fail('ERR_VALR_DEVICE', `VALR_DEVICE=cuda but CUDA is unavailable: ${status.message}`);
  // The host looked like it had a GPU, so say once why it is not used.
  process.emitWarning(`valr-node: running on CPU: ${status.message}`, { code: 'VALR_CUDA_UNAVAILABLE' });
  return loadCpu(`CUDA unavailable: ${status.message}`, status);
}

// Probes a CUDA binary without selecting it (for `valr doctor`).
export function probeCudaBinary(file: string | null = findCudaBinary()): CudaStatus {
  if (!file) return { kind: 'no-binary', message: `no CUDA binary for ${platformDir}` };
  try {
    return classifyCudaProbe(requireAddon(file).probeCuda());
  } catch (e) {
    return { kind: 'cuda-error', message: `the CUDA binary failed to load: ${(e as Error).message}` };
  }
}
