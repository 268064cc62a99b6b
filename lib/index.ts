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
export * as data from './data';
export * as teachers from './teachers';
export * as latent from './latent';
export * as train from './train';
export { runExperiment, prepareData } from './pipeline/experiment';
export { runDemo } from './pipeline/demo';
