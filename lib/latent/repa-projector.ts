// psi_m: the REPA projector of one teacher, REPA's shape
// Linear(D, H) -> SiLU -> Linear(H, H) -> SiLU -> Linear(H, D_m), applied after
// upsampling the K latent tokens to the teacher's P patches. Linear(Up(F)) ==
// Up(Linear(F)) (bilinear weights sum to 1), so the first layer runs on the K rows
// and the upsample moves H-wide rows.
import * as F from '../autograd/model-ops';
import { upsampleBilinear } from '../autograd/alignment-ops';
import { Variable } from '../autograd/function';
import { Tensor, type Device } from '../tensor';
import { Linear } from '../nn/layers';
import { Initializer, Module } from '../nn/module';

export function silu(x: Variable): Variable {
  const ones = new Variable(Tensor.full(x.value.shape, 1, { device: x.value.device }));
  return F.swiglu(x, ones);
}

export class RepaProjector extends Module {
  fc1: Linear;
  fc2: Linear;
  fc3: Linear;
  constructor(
    readonly inDim: number,
    readonly hiddenDim: number,
    readonly outDim: number,
    readonly tokenGrid: readonly [number, number],
    readonly patchGrid: readonly [number, number],
    options: { seed?: number; device?: Device } = {},
  ) {
    super();
    const o = { init: new Initializer(options.seed ?? 7), device: options.device ?? ('cpu' as Device), std: 0.02 };
    this.fc1 = new Linear(inDim, hiddenDim, true, o);
    this.fc2 = new Linear(hiddenDim, hiddenDim, true, o);
    this.fc3 = new Linear(hiddenDim, outDim, true, o);
  }

  /** taps [S, K, D] -> predictions [S, P, D_m] */
  forward(taps: Variable): Variable {
    const up = upsampleBilinear(this.fc1.forward(taps), this.tokenGrid as [number, number], this.patchGrid as [number, number]);
    return this.fc3.forward(silu(this.fc2.forward(silu(up))));
  }
}
