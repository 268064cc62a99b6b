// The raw shape of the native addon (csrc/napi/*). Public code goes through
// lib/tensor.ts, lib/kernels.ts and lib/ops; this type is for them and for tests.

export interface NativeTensor {
  dispose(): void;
  isDisposed(): boolean;
  shape(): number[];
  dtype(): 'float32' | 'int32';
  device(): string;
  nbytes(): number;
  read(): ArrayBuffer;
  write(data: Float32Array | Int32Array): void;
  to(device: string): NativeTensor;
  reshape(shape: number[]): NativeTensor;
  devicePointer(): bigint;
  stream(): bigint | null;
  owning(): boolean;
}

export interface CudaDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
  multiProcessors: number;
}

export interface CudaProbe {
  built: boolean;
  runtimeVersion: number;
  driverVersion: number;
  deviceCount: number;
  errorCode: number;
  errorName: string;
  errorString: string;
  launchErrorCode: number;
  launchErrorName: string;
  launchErrorString: string;
  compiledArchitectures: string;
  devices: CudaDeviceInfo[];
}

export interface CudaMemoryStats {
  inUse: number;
  peakInUse: number;
  reserved: number;
  allocations: number;
  cacheHits: number;
}

export interface HostMemoryStats {
  inUse: number;
  peakInUse: number;
  cached: number;
  cacheHits: number;
}

export interface EngineConfig {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  ropeTheta: number;
  eps: number;
}

export interface RawLossResult<G> {
  loss: number;
  perTeacher: number[];
  gradPred: G[];
}

export interface BindingModule {
  readonly variant: 'cpu' | 'cuda';
  readonly abiVersion: number;
  NativeTensor: new (...args: never[]) => NativeTensor;

  probeCuda(): CudaProbe;
  numThreads(): number;
  setNumThreads(n: number): void;
  copyBandwidth(bytes: number, iterations: number): number;
  hostMemoryStats(): HostMemoryStats;
  hostEmptyCache(): void;
  cudaMemoryStats(device: number): CudaMemoryStats;
  cudaEmptyCache(device: number): void;
  cudaResetPeakStats(device: number): void;
  cudaSynchronize(device: number): void;

  empty(shape: number[], dtype: string, device: string): NativeTensor;
  fromArray(data: Float32Array | Int32Array, shape: number[], device: string): NativeTensor;
  wrapDevicePointer(pointer: bigint, shape: number[], dtype: string, device: string): NativeTensor;

  fill(t: NativeTensor, value: number): void;
  scale(t: NativeTensor, alpha: number): void;
  addScaled(y: NativeTensor, x: NativeTensor, alpha: number): void;

  tapGather(hidden: Float32Array, hiddenShape: number[], rows: Int32Array, out?: Float32Array): Float32Array;
  tapScatter(grad: Float32Array, gradShape: number[], rows: Int32Array, hiddenShape: number[], out?: Float32Array): Float32Array;
  upsampleBilinear(x: Float32Array, xShape: number[], outGrid: number[], out?: Float32Array): Float32Array;
  upsampleBilinearBackward(dy: Float32Array, xShape: number[], outGrid: number[], out?: Float32Array): Float32Array;
  repaCosineLoss(
    teachers: { pred: Float32Array; target: Float32Array; shape: number[]; grad?: Float32Array }[],
    weights?: Float32Array | null,
    gradScale?: number,
  ): RawLossResult<Float32Array>;

  gemm(
    a: NativeTensor, b: NativeTensor, transA: boolean, transB: boolean, bias?: NativeTensor | null,
    out?: NativeTensor | null, accumulate?: boolean, alpha?: number,
  ): NativeTensor;
  attentionForward(
    q: NativeTensor, k: NativeTensor, v: NativeTensor, keyMask: Int32Array | null, causal: boolean, scale?: number,
  ): { out: NativeTensor; lse: NativeTensor };
  attentionBackward(
    dout: NativeTensor, q: NativeTensor, k: NativeTensor, v: NativeTensor, out: NativeTensor, lse: NativeTensor,
    keyMask: Int32Array | null, causal: boolean, scale?: number,
  ): { dq: NativeTensor; dk: NativeTensor; dv: NativeTensor };
  rmsNorm(x: NativeTensor, w: NativeTensor, eps: number): { y: NativeTensor; rstd: NativeTensor };
  rmsNormBackward(dy: NativeTensor, x: NativeTensor, w: NativeTensor, rstd: NativeTensor, dw?: NativeTensor | null): NativeTensor;
  layerNorm(x: NativeTensor, w: NativeTensor, b: NativeTensor | null, eps: number): { y: NativeTensor; mean: NativeTensor; rstd: NativeTensor };
  layerNormBackward(
    dy: NativeTensor, x: NativeTensor, w: NativeTensor, mean: NativeTensor, rstd: NativeTensor,
    dw?: NativeTensor | null, db?: NativeTensor | null,
  ): NativeTensor;
  rope(x: NativeTensor, positions: Int32Array, theta: number, inverse?: boolean): NativeTensor;
  swiglu(gate: NativeTensor, up: NativeTensor): NativeTensor;
  swigluBackward(dy: NativeTensor, gate: NativeTensor, up: NativeTensor): { dgate: NativeTensor; dup: NativeTensor };
  gelu(x: NativeTensor): NativeTensor;
  geluBackward(dy: NativeTensor, x: NativeTensor): NativeTensor;
  crossEntropy(
    logits: NativeTensor, targets: Int32Array, ignoreIndex: number, divisor?: number | null, withGrad?: boolean,
    gradScale?: number,
  ): { lossSum: number; count: number; loss: number; dlogits: NativeTensor | null };
  adamw(
    param: NativeTensor, grad: NativeTensor, m: NativeTensor, v: NativeTensor, lr: number, beta1: number, beta2: number,
    eps: number, weightDecay: number, step: number,
  ): void;
  sumSquares(x: NativeTensor): number;
  copyBlock(src: NativeTensor, srcOffset: number, dst: NativeTensor, dstOffset: number, length: number, accumulate?: boolean): void;
  scatterRows(src: NativeTensor, rows: Int32Array, dst: NativeTensor): void;

  decoderForward(
    weights: (NativeTensor | null)[], config: EngineConfig, cacheK: NativeTensor[], cacheV: NativeTensor[], cacheLength: number,
    keyMask: Int32Array, x: NativeTensor, positions: Int32Array, tapLayer: number, wantLogits: boolean,
  ): { hidden: NativeTensor; tap: NativeTensor | null; logits: NativeTensor | null };
  latentSegment(
    weights: (NativeTensor | null)[], config: EngineConfig, cacheK: NativeTensor[], cacheV: NativeTensor[], cacheLength: number,
    keyMask: Int32Array, h0: NativeTensor, K: number, startPositions: Int32Array, tapLayer: number,
  ): { taps: NativeTensor; hidden: NativeTensor };

  tensorTapGather(hidden: NativeTensor, rows: Int32Array, out?: NativeTensor | null): NativeTensor;
  tensorTapScatter(
    grad: NativeTensor,
    rows: Int32Array,
    hiddenShape: number[],
    out?: NativeTensor | null,
    accumulate?: boolean,
  ): NativeTensor;
  tensorUpsampleBilinear(x: NativeTensor, inGrid: number[], outGrid: number[], out?: NativeTensor | null): NativeTensor;
  tensorUpsampleBilinearBackward(
    dy: NativeTensor,
    inGrid: number[],
    outGrid: number[],
    out?: NativeTensor | null,
    accumulate?: boolean,
  ): NativeTensor;
  tensorRepaCosineLoss(
    teachers: { pred: NativeTensor; target: NativeTensor }[],
    weights?: Float32Array | null,
    gradScale?: number,
  ): RawLossResult<NativeTensor>;
}
