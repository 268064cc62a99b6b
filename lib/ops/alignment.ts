// The alignment kernels as Tensor ops on any device: each runs where its inputs live.
// Outputs are new tensors unless `out` is given (written, or added to with accumulate).
import { fail } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';

/** hidden [B, T, D] (or [N, D]) rows -> [rows.length, D] */
export function tapGather(hidden: Tensor, rows: Int32Array, out?: Tensor): Tensor {
  const r = native().tensorTapGather(hidden.native, rows, out?.native ?? null);
  return out ?? new Tensor(r);
}

/** grad [count, D] (or [S, K, D]) summed into rows of a [B, T, D] tensor; accumulate adds into `out`. */
export function tapScatter(
  grad: Tensor,
  rows: Int32Array,
  hiddenShape: readonly number[],
  options: { out?: Tensor; accumulate?: boolean } = {},
): Tensor {
  const r = native().tensorTapScatter(grad.native, rows, [...hiddenShape], options.out?.native ?? null, !!options.accumulate);
  return options.out ?? new Tensor(r);
}

/** x [S, gh*gw, D] or [S, gh, gw, D] -> [S, Gh*Gw, D] or [S, Gh, Gw, D] */
export function upsampleBilinear(x: Tensor, inGrid: readonly number[], outGrid: readonly number[], out?: Tensor): Tensor {
  const r = native().tensorUpsampleBilinear(x.native, [...inGrid], [...outGrid], out?.native ?? null);
  return out ?? new Tensor(r);
}

export function upsampleBilinearBackward(
  dy: Tensor,
  inGrid: readonly number[],
  outGrid: readonly number[],
  options: { out?: Tensor; accumulate?: boolean } = {},
): Tensor {
  const r = native().tensorUpsampleBilinearBackward(
    dy.native,
    [...inGrid],
    [...outGrid],
    options.out?.native ?? null,
    !!options.accumulate,
  );
  return options.out ?? new Tensor(r);
}

export interface RepaTeacherTensors {
  pred: Tensor; // [S, P_m, D_m]
  target: Tensor; // [S, P_m, D_m], frozen
}

/** Loss (mean over teachers) and gradScale * d(loss)/d(pred) per teacher, in one pass. */
export function repaCosineLoss(
  teachers: readonly RepaTeacherTensors[],
  options: { weights?: Float32Array | null; gradScale?: number } = {},
): { loss: number; perTeacher: number[]; gradPred: Tensor[] } {
  if (!Array.isArray(teachers)) fail('ERR_VALR_ARGUMENT', 'repaCosineLoss takes an array of {pred, target} tensors');
  const r = native().tensorRepaCosineLoss(
    teachers.map((t) => ({ pred: t.pred?.native, target: t.target?.native })),
    options.weights ?? null,
    options.gradScale ?? 1,
  );
  return { loss: r.loss, perTeacher: r.perTeacher, gradPred: r.gradPred.map((g) => new Tensor(g)) };
}

/** y += alpha * x (float32, same size and device) */
export function addScaled(y: Tensor, x: Tensor, alpha = 1): Tensor {
  native().addScaled(y.native, x.native, alpha);
  return y;
}

export function scaleInPlace(y: Tensor, alpha: number): Tensor {
  native().scale(y.native, alpha);
  return y;
}
