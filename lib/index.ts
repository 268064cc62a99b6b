// valr-node: Vision-aligned Latent Reasoning for Node.js.
export { Tensor, scope, keep, type DType, type Device } from './tensor';
export { ValrError, type ValrErrorCode } from './errors';
export * as kernels from './kernels';
export * as ops from './ops/alignment';
export * as runtime from './runtime';
export * as autograd from './autograd';
export type { BindingModule, NativeTensor } from './native/binding';
