// Basic layers: Linear, Embedding, RMSNorm, LayerNorm.
import * as F from '../autograd/model-ops';
import type { Variable } from '../autograd/function';
import type { Device } from '../tensor';
import { Initializer, Module, parameter } from './module';

export interface InitOptions {
  init: Initializer;
  device: Device;
  std?: number;
}

export class Linear extends Module {
  weight: Variable; // [out, in]
  bias: Variable | null;
  constructor(inFeatures: number, outFeatures: number, bias: boolean, o: InitOptions) {
    super();
    this.weight = parameter(o.init.normal(inFeatures * outFeatures, o.std ?? 0.02), [outFeatures, inFeatures], o.device);
    this.bias = bias ? parameter(new Float32Array(outFeatures), [outFeatures], o.device) : null;
  }
  forward(x: Variable): Variable {
    return F.linear(x, this.weight, this.bias);
  }
}

export class Embedding extends Module {
  weight: Variable; // [num, dim]
  constructor(num: number, dim: number, o: InitOptions) {
    super();
    this.weight = parameter(o.init.normal(num * dim, o.std ?? 0.02), [num, dim], o.device);
  }
  forward(ids: Int32Array, shape: readonly number[]): Variable {
    return F.embedding(this.weight, ids, shape);
  }
}

export class RMSNorm extends Module {
  weight: Variable;
  constructor(dim: number, readonly eps: number, o: { device: Device }) {
    super();
    this.weight = parameter(new Float32Array(dim).fill(1), [dim], o.device);
  }
  forward(x: Variable): Variable {
    return F.rmsNorm(x, this.weight, this.eps);
  }
}

export class LayerNorm extends Module {
  weight: Variable;
  bias: Variable;
  constructor(dim: number, readonly eps: number, o: { device: Device }) {
    super();
    this.weight = parameter(new Float32Array(dim).fill(1), [dim], o.device);
    this.bias = parameter(new Float32Array(dim), [dim], o.device);
  }
  forward(x: Variable): Variable {
    return F.layerNorm(x, this.weight, this.bias, this.eps);
  }
}
