// The 2-layer GELU projector from vision features to the decoder's embedding space.
import * as F from '../autograd/model-ops';
import type { Variable } from '../autograd/function';
import type { Device } from '../tensor';
import { Linear } from './layers';
import { Initializer, Module } from './module';

export class Projector extends Module {
  linear_1: Linear;
  linear_2: Linear;
  constructor(inDim: number, outDim: number, options: { seed?: number; device?: Device } = {}) {
    super();
    const o = { init: new Initializer(options.seed ?? 2), device: options.device ?? ('cpu' as Device) };
    this.linear_1 = new Linear(inDim, outDim, true, o);
    this.linear_2 = new Linear(outDim, outDim, true, o);
  }
  forward(x: Variable): Variable {
    return this.linear_2.forward(F.gelu(this.linear_1.forward(x)));
  }
}
