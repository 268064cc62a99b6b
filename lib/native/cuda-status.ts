// Why CUDA can or cannot be used, from a probe of the CUDA binary. Each failure
// mode a user can hit has its own `kind` and a message that says what to do.
import type { CudaProbe } from './binding';

export type CudaStatusKind =
  | 'ok'
  | 'disabled' // VALR_DEVICE=cpu or CUDA_VISIBLE_DEVICES=""
  | 'no-binary' // no CUDA build of the addon for this platform
  | 'no-driver'
  | 'driver-too-old'
  | 'no-device'
  | 'no-kernel-image'
  | 'cuda-error';

export interface CudaStatus {
  kind: CudaStatusKind;
  message: string;
  probe?: CudaProbe;
}

// cudaError_t values (driver_types.h) the classification depends on.
const cudaErrorInsufficientDriver = 35;
const cudaErrorStubLibrary = 34;
const cudaErrorNoDevice = 100;
const cudaErrorNoKernelImageForDevice = 209;
const cudaErrorUnsupportedPtxVersion = 222;

export function cudaVersionString(v: number): string {
  return v ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : 'none';
}

export function classifyCudaProbe(p: CudaProbe): CudaStatus {
  const rt = cudaVersionString(p.runtimeVersion);
  if (!p.built) return { kind: 'no-binary', message: 'this binary was built without CUDA', probe: p };
  if (p.errorCode === cudaErrorInsufficientDriver || p.errorCode === cudaErrorStubLibrary) {
    if (p.driverVersion === 0 || p.errorCode === cudaErrorStubLibrary) {
      return {
        kind: 'no-driver',
        message: `no NVIDIA driver found (libcuda could not be loaded); the CUDA binary needs a driver supporting CUDA ${rt}`,
        probe: p,
      };
    }
    return {
      kind: 'driver-too-old',
      message:
        `the NVIDIA driver supports CUDA ${cudaVersionString(p.driverVersion)} but this binary was built with CUDA ${rt}; ` +
        `update the driver, or build from source with an older CUDA toolkit`,
      probe: p,
    };
  }
  if (p.errorCode === cudaErrorNoDevice || (p.errorCode === 0 && p.deviceCount === 0)) {
    return { kind: 'no-device', message: 'the NVIDIA driver is installed but no CUDA device is visible', probe: p };
  }
  if (p.errorCode !== 0) {
    return { kind: 'cuda-error', message: `CUDA initialisation failed: ${p.errorName} (${p.errorString})`, probe: p };
  }
  if (p.launchErrorCode === cudaErrorNoKernelImageForDevice || p.launchErrorCode === cudaErrorUnsupportedPtxVersion) {
    const d = p.devices[0];
    const cc = d ? d.computeCapability : '?';
    return {
      kind: 'no-kernel-image',
      message:
        `no kernel image for ${d ? d.name : 'this GPU'} (compute capability ${cc}); this binary has ${p.compiledArchitectures}. ` +
        `Build from source for it: npx cmake-js build --CDCMAKE_CUDA_ARCHITECTURES=${cc.replace('.', '')}`,
      probe: p,
    };
  }
  if (p.launchErrorCode !== 0) {
    return { kind: 'cuda-error', message: `a test kernel failed: ${p.launchErrorName} (${p.launchErrorString})`, probe: p };
  }
  const names = p.devices.map((d) => `${d.name} (sm_${d.computeCapability.replace('.', '')})`).join(', ');
  return { kind: 'ok', message: `${p.deviceCount} CUDA device(s): ${names}`, probe: p };
}
