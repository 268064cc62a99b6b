// valr-node: Vision-aligned Latent Reasoning for Node.js.
export { Tensor, scope, keep, adopt, type DType, type Device } from './tensor';
export { ValrError, type ValrErrorCode } from './errors';
export * as kernels from './kernels';
export * as ops from './ops/alignment';
export * as runtime from './runtime';
export * as autograd from './autograd';
export type { BindingModule, NativeTensor } from './native/binding';
export * as nn from './nn';
export { loadModel } from './nn/load';
export { AdamW, clipGradNorm, type ParamGroup } from './optim/adamw';
export * as modelOps from './ops/model';
export * as safetensors from './io/safetensors';
