// The alignment kernels on plain typed arrays in host memory, for embedding in other
// stacks: no Tensor objects, nothing to dispose, results in new JS-owned arrays.
// Shapes are given explicitly; every argument is validated by the native side.
// Each call may write into a caller-owned `out` array (reused across calls, it saves
// faulting in fresh pages every time); it must not overlap the inputs.
import { native } from './native';

export interface RepaTeacherArrays {
  pred: Float32Array; // [S, P, D]
  target: Float32Array; // [S, P, D]
  shape: readonly [number, number, number] | number[]; // [S, P, D]
  grad?: Float32Array; // optional output for the gradient
}

export interface RepaLossResult {
  loss: number; // mean over teachers
  perTeacher: number[];
  gradPred: Float32Array[]; // d(loss)/d(pred) per teacher, times gradScale
}

/** hidden [B, T, D], rows: S*K indices into the B*T rows -> [S*K, D] */
export function tapGather(hidden: Float32Array, hiddenShape: readonly number[], rows: Int32Array, out?: Float32Array): Float32Array {
  return native().tapGather(hidden, [...hiddenShape], rows, out);
}

/** grad [S, K, D] scattered (summed) into zeros of [B, T, D] at `rows` */
export function tapScatter(
  grad: Float32Array,
  gradShape: readonly number[],
  rows: Int32Array,
  hiddenShape: readonly number[],
  out?: Float32Array,
): Float32Array {
  return native().tapScatter(grad, [...gradShape], rows, [...hiddenShape], out);
}

/** x [S, gh, gw, D] -> [S, Gh, Gw, D], as F.interpolate(mode='bilinear', align_corners=False) */
export function upsampleBilinear(
  x: Float32Array,
  xShape: readonly number[],
  outGrid: readonly number[],
  out?: Float32Array,
): Float32Array {
  return native().upsampleBilinear(x, [...xShape], [...outGrid], out);
}

/** dy [S, Gh, Gw, D] -> dx [S, gh, gw, D]; xShape is the forward input's shape */
export function upsampleBilinearBackward(
  dy: Float32Array,
  xShape: readonly number[],
  outGrid: readonly number[],
  out?: Float32Array,
): Float32Array {
  return native().upsampleBilinearBackward(dy, [...xShape], [...outGrid], out);
}

/**
 * Cosine REPA loss of one teacher: -(1/(sum(w) P)) sum_s w_s sum_p cos(pred[s,p], target[s,p]),
 * and its gradient with respect to pred. weights [S] default to 1 (0 marks padding).
 */
export function repaCosineLoss(
  pred: Float32Array,
  target: Float32Array,
  shape: readonly number[],
  weights?: Float32Array | null,
  gradOut?: Float32Array,
): { loss: number; gradPred: Float32Array } {
  const r = native().repaCosineLoss([{ pred, target, shape: [...shape], grad: gradOut }], weights ?? null, 1);
  return { loss: r.loss, gradPred: r.gradPred[0] };
}

/** Several teachers (own P and D each, same S) in one pass; loss = mean over teachers. */
export function repaCosineLossMulti(
  teachers: readonly RepaTeacherArrays[],
  weights?: Float32Array | null,
  options: { gradScale?: number } = {},
): RepaLossResult {
  return native().repaCosineLoss(
    teachers.map((t) => ({ pred: t.pred, target: t.target, shape: [...t.shape], grad: t.grad })),
    weights ?? null,
    options.gradScale ?? 1,
  );
}
