// The alignment kernels as differentiable ops for the tape in function.ts.
import { Tensor } from '../tensor';
import * as ops from '../ops/alignment';
import { apply, type DifferentiableOp, type Variable } from './function';

interface TapParams {
  rows: Int32Array;
}

/** hidden [B, T, D] -> [S, K, D] at the latent slot rows; shape of the result given by `outShape`. */
const tapOp: DifferentiableOp<TapParams & { outShape: readonly number[] }> = {
  name: 'tap',
  forward(ctx, [hidden], p) {
    ctx.data.hiddenShape = hidden.shape;
    const flat = ops.tapGather(hidden, p.rows);
    const out = flat.reshape(p.outShape);
    flat.dispose();
    return [out];
  },
  backward(ctx, [g], p) {
    if (!g || !ctx.needsInputGrad[0]) return [null];
    const hiddenShape = ctx.data.hiddenShape as number[];
    // The gradient arrives in outShape; the scatter wants one row per index.
    const rows = g.reshape([p.rows.length, hiddenShape[hiddenShape.length - 1]]);
    const out = ops.tapScatter(rows, p.rows, hiddenShape);
    rows.dispose();
    return [out];
  },
};

interface UpsampleParams {
  inGrid: readonly [number, number];
  outGrid: readonly [number, number];
}

const upsampleOp: DifferentiableOp<UpsampleParams> = {
  name: 'upsampleBilinear',
  forward(_ctx, [x], p) {
    return [ops.upsampleBilinear(x, p.inGrid, p.outGrid)];
  },
  backward(ctx, [g], p) {
    if (!g || !ctx.needsInputGrad[0]) return [null];
    return [ops.upsampleBilinearBackward(g, p.inGrid, p.outGrid)];
  },
};

interface RepaParams {
  targets: readonly Tensor[];
  weights: Float32Array | null;
}

// Forward computes the loss and, in the same pass, the gradients (saved); backward
// scales them by the incoming gradient of the scalar loss.
const repaOp: DifferentiableOp<RepaParams> = {
  name: 'repaCosineLoss',
  forward(ctx, preds, p) {
    const r = ops.repaCosineLoss(
      preds.map((pred, i) => ({ pred, target: p.targets[i] })),
      { weights: p.weights },
    );
    ctx.own(...r.gradPred);
    return [Tensor.fromArray(new Float32Array([r.loss]), [1], { device: preds[0].device })];
  },
  backward(ctx, [g]) {
    const scale = g ? (g.toArray()[0] as number) : 0;
    return ctx.owned.map((saved, i) => {
      if (!ctx.needsInputGrad[i]) return null;
      const out = saved.reshape(saved.shape); // a handle of its own: the context frees its copy
      if (scale !== 1) ops.scaleInPlace(out, scale);
      return out;
    });
  },
};

export function tap(hidden: Variable, rows: Int32Array, outShape: readonly number[]): Variable {
  return apply(tapOp, [hidden], { rows, outShape })[0];
}

export function upsampleBilinear(x: Variable, inGrid: readonly [number, number], outGrid: readonly [number, number]): Variable {
  return apply(upsampleOp, [x], { inGrid, outGrid })[0];
}

/** Scalar loss Variable [1]: mean over teachers of the weighted cosine REPA loss. */
export function repaCosineLoss(preds: readonly Variable[], targets: readonly Tensor[], weights?: Float32Array | null): Variable {
  return apply(repaOp, preds, { targets, weights: weights ?? null })[0];
}
