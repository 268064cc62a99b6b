export { Variable, OpContext, apply, backward, noGrad, type DifferentiableOp } from './function';
export { tap, upsampleBilinear, repaCosineLoss } from './alignment-ops';
