// Data standardisation of a teacher's features, and the "no image information" baseline
// that shows why it is needed (VALR_SPEC.md, "Vision alignment", step 4).
//
// The REPA loss is -cos(psi(Up(F))[p], phi(I)[p]). If phi's patch features share a large
// common component (the synthetic teachers' offsets, fractions, positions ...), a prediction
// that ignores the image, e.g. the mean feature, already scores a high cosine and the loss
// gives the latents no reason to carry visual information. Real encoders' patch features
// vary strongly from image to image. So each synthetic teacher's channels are standardised,
// (x - mean_c) / std_c, with mean and std over every patch of the training images, which
// removes the common component. On the synthetic scenes that is not enough: the layout
// (floor below, background above) makes the patch position alone worth a cosine of ~0.5,
// so 'position' mode also subtracts each position's mean (meanFeatureBaseline measures
// both; see test/teachers-standardize.test.ts for the numbers).
//
// TeacherStats is plain JSON so that it can be saved with a model (valr.json) and a later
// run standardises with exactly the same constants.
import { fail } from '../errors';
import { checkImageId, patchCount, TeacherWrapper, type Teacher } from './teacher';

/**
 * 'channel': x[p, c] -> (x - mean[c]) / std[c], the spec's per-channel standardisation.
 * 'position': x[p, c] -> (x - mean[p, c]) / std[c]: also removes what the patch position
 * alone predicts (floor at the bottom, background at the top, objects in the middle),
 * which per-channel standardisation leaves in; std[c] is then the spread around the
 * position means, pooled over positions (a per-(p, c) std would divide by ~0 wherever a
 * channel never varies at one position, e.g. "floor fraction" in the bottom row, and blow
 * up the first eval image that differs there).
 */
export type StandardizeMode = 'channel' | 'position';

export interface TeacherStats {
  /** The teacher's name, for the reader of valr.json; not checked on use. */
  teacher: string;
  /** Absent means 'channel'. */
  mode?: StandardizeMode;
  dim: number;
  grid: [number, number];
  /** 'channel': [dim]; 'position': [P * dim], row-major [P, dim]. */
  mean: number[];
  /** [dim], floored (see computeTeacherStats), all > 0. */
  std: number[];
  /** Distinct images the statistics were computed over. */
  images: number;
}

export interface TeacherStatsOptions {
  /** Default 'channel'. */
  mode?: StandardizeMode;
  /** Use at most this many distinct images, the first ones in order (default all). */
  maxImages?: number;
  /** Images per teacher.batch() call (default 64), bounding the memory in flight. */
  batchSize?: number;
  /** Relative std floor (default 1e-3): std_c >= minStdRatio * max_c std_c. */
  minStdRatio?: number;
}

/** Absolute std floor, for a teacher whose channels are all (nearly) constant. */
export const MIN_STD = 1e-8;
export const DEFAULT_MIN_STD_RATIO = 1e-3;

/**
 * Means and (population) standard deviations over all P patches of the distinct ids in
 * `imageIds` (a repeated id counts once: an image seen in several samples is still one
 * image); see StandardizeMode for what each mode computes. Sums are float64, per (p, c),
 * shifted by the first image's value, so a channel whose mean is large compared with its
 * spread does not lose its variance to cancellation. Per-channel variance = mean over
 * positions of the within-position variance (+ the variance of the position means in
 * 'channel' mode: the law of total variance).
 *
 * std floor: std_c = max(std_c, minStdRatio * max_c std_c, MIN_STD). A channel that is
 * constant over the training images (an identity slot no scene uses, say) then maps to 0
 * instead of 0/0, and a channel that barely varies is scaled by at most 1/minStdRatio
 * relative to the strongest one, so float noise in it cannot outweigh real signal. Its
 * standardised std is then below 1, never above.
 */
export function computeTeacherStats(teacher: Teacher, imageIds: readonly string[], opts: TeacherStatsOptions = {}): TeacherStats {
  const who = 'computeTeacherStats';
  if (!Array.isArray(imageIds)) fail('ERR_VALR_ARGUMENT', `${who}: imageIds must be an array of image ids`);
  const mode = opts.mode ?? 'channel';
  const maxImages = opts.maxImages ?? Infinity, batchSize = opts.batchSize ?? 64, ratio = opts.minStdRatio ?? DEFAULT_MIN_STD_RATIO;
  if (mode !== 'channel' && mode !== 'position') fail('ERR_VALR_ARGUMENT', `${who}: mode must be 'channel' or 'position', got ${JSON.stringify(opts.mode)}`);
  if (!(maxImages >= 1)) fail('ERR_VALR_ARGUMENT', `${who}: maxImages must be >= 1, got ${opts.maxImages}`);
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1)) fail('ERR_VALR_ARGUMENT', `${who}: batchSize must be a positive integer, got ${opts.batchSize}`);
  if (!(ratio >= 0 && ratio < 1)) fail('ERR_VALR_ARGUMENT', `${who}: minStdRatio must be in [0, 1), got ${opts.minStdRatio}`);
  const ids: string[] = [];
  for (const id of new Set(imageIds.map((id) => checkImageId(id, who)))) {
    if (ids.length >= maxImages) break;
    ids.push(id);
  }
  if (ids.length === 0) fail('ERR_VALR_ARGUMENT', `${who}: teacher '${teacher.name}' needs at least one image id`);

  const D = teacher.dim, P = patchCount(teacher), row = P * D;
  const shift = new Float64Array(row), s1 = new Float64Array(row), s2 = new Float64Array(row);
  for (let b = 0; b < ids.length; b += batchSize) {
    const chunk = ids.slice(b, b + batchSize);
    const f = teacher.batch(chunk);
    if (f.length !== chunk.length * row) fail('ERR_VALR_SHAPE', `${who}: teacher '${teacher.name}' returned ${f.length} values for ${chunk.length} image(s), expected ${chunk.length * row}`);
    if (b === 0) shift.set(f.subarray(0, row));
    for (let i = 0; i < f.length; i++) {
      const x = f[i], j = i % row;
      if (!Number.isFinite(x)) fail('ERR_VALR_RANGE', `${who}: teacher '${teacher.name}' gave ${x} for image '${chunk[Math.floor(i / row)]}', patch ${Math.floor(j / D)}, channel ${j % D}`);
      const d = x - shift[j];
      s1[j] += d;
      s2[j] += d * d;
    }
  }
  const n = ids.length;
  const posMean = new Float64Array(row), chanMean = new Float64Array(D), chanVar = new Float64Array(D);
  for (let j = 0; j < row; j++) {
    const m = s1[j] / n;
    posMean[j] = shift[j] + m;
    chanMean[j % D] += posMean[j] / P;
    chanVar[j % D] += Math.max(0, s2[j] / n - m * m) / P;
  }
  if (mode === 'channel') for (let j = 0; j < row; j++) chanVar[j % D] += (posMean[j] - chanMean[j % D]) ** 2 / P;
  const std = Array.from(chanVar, Math.sqrt);
  const floor = Math.max(ratio * Math.max(...std), MIN_STD);
  return {
    teacher: teacher.name,
    mode,
    dim: D,
    grid: [teacher.grid[0], teacher.grid[1]],
    mean: Array.from(mode === 'channel' ? chanMean : posMean),
    std: std.map((s) => Math.max(s, floor)),
    images: n,
  };
}

/** Throws unless `stats` is well formed and matches `teacher`'s dim and grid. */
export function checkTeacherStats(stats: TeacherStats, teacher: Pick<Teacher, 'name' | 'dim' | 'grid'>): TeacherStats {
  const who = `StandardizedTeacher '${teacher.name}'`;
  if (!stats || typeof stats !== 'object') fail('ERR_VALR_ARGUMENT', `${who}: stats must be an object { dim, grid, mean, std }`);
  const mode = stats.mode ?? 'channel';
  if (mode !== 'channel' && mode !== 'position') fail('ERR_VALR_ARGUMENT', `${who}: stats.mode must be 'channel' or 'position', got ${JSON.stringify(stats.mode)}`);
  if (stats.dim !== teacher.dim) fail('ERR_VALR_SHAPE', `${who}: stats.dim is ${stats.dim}, the teacher's dim is ${teacher.dim}`);
  const g = stats.grid;
  if (!Array.isArray(g) || g.length !== 2 || g[0] !== teacher.grid[0] || g[1] !== teacher.grid[1]) {
    fail('ERR_VALR_SHAPE', `${who}: stats.grid is ${JSON.stringify(g)}, the teacher's grid is ${JSON.stringify([...teacher.grid])}`);
  }
  const sizes = { mean: mode === 'channel' ? teacher.dim : patchCount(teacher) * teacher.dim, std: teacher.dim };
  for (const k of ['mean', 'std'] as const) {
    const a = stats[k];
    const what = k === 'mean' && mode === 'position' ? `P * dim = ${sizes[k]} ('position' mode)` : `dim = ${sizes[k]}`;
    if (!Array.isArray(a) || a.length !== sizes[k]) fail('ERR_VALR_SHAPE', `${who}: stats.${k} has ${Array.isArray(a) ? a.length : 'no'} values, expected ${what}`);
    const bad = a.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x) || (k === 'std' && !(x > 0)));
    if (bad >= 0) fail('ERR_VALR_ARGUMENT', `${who}: stats.${k}[${bad}] is ${a[bad]}; ${k === 'std' ? 'each std must be finite and > 0' : 'each mean must be finite'}`);
  }
  return stats;
}

/**
 * A teacher whose features are the inner teacher's, standardised with fixed stats (see
 * StandardizeMode). Name, grid and dim are the inner teacher's, so configs and projector
 * shapes do not change when standardisation is switched on.
 */
export class StandardizedTeacher extends TeacherWrapper {
  readonly stats: TeacherStats;
  readonly #mean: Float64Array; // [P * dim] in both modes; float64 so that x - mean is exact for a large mean
  readonly #invStd: Float64Array; // [dim]

  constructor(inner: Teacher, stats: TeacherStats) {
    super(inner);
    if (!inner || typeof inner.batch !== 'function' || typeof inner.features !== 'function') fail('ERR_VALR_ARGUMENT', 'StandardizedTeacher: inner must be a Teacher');
    checkTeacherStats(stats, inner);
    // A private copy: later edits to the caller's object cannot change the features.
    this.stats = { ...stats, mode: stats.mode ?? 'channel', grid: [stats.grid[0], stats.grid[1]], mean: stats.mean.slice(), std: stats.std.slice() };
    const D = inner.dim, row = patchCount(inner) * D;
    this.#mean = stats.mean.length === row ? Float64Array.from(stats.mean) : Float64Array.from({ length: row }, (_, j) => stats.mean[j % D]);
    this.#invStd = Float64Array.from(stats.std, (s) => 1 / s);
  }

  features(imageId: string): Float32Array {
    return this.#apply(this.inner.features(imageId), 1);
  }

  batch(imageIds: readonly string[]): Float32Array {
    return this.#apply(this.inner.batch(imageIds), imageIds.length);
  }

  /** Into a new array: the Teacher interface does not say the inner array is ours to overwrite. */
  #apply(f: Float32Array, n: number): Float32Array {
    const D = this.dim, row = this.#mean.length, want = n * row;
    if (!(f instanceof Float32Array) || f.length !== want) fail('ERR_VALR_INTERNAL', `teacher '${this.name}' returned ${f?.length} values for ${n} image(s), expected ${want}`);
    const mean = this.#mean, inv = this.#invStd, out = new Float32Array(want);
    for (let i = 0; i < want; i += row) for (let j = 0; j < row; j++) out[i + j] = (f[i + j] - mean[j]) * inv[j % D];
    return out;
  }
}

/** Cosine with each norm clamped at 1e-8, as F.cosine_similarity and the REPA loss do. */
function cosine(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, D: number): number {
  let ab = 0, aa = 0, bb = 0;
  for (let c = 0; c < D; c++) {
    const x = a[ao + c], y = b[bo + c];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / (Math.max(Math.sqrt(aa), 1e-8) * Math.max(Math.sqrt(bb), 1e-8));
}

/**
 * Mean cosine over all patches of `ids` between a prediction and the teacher's targets:
 * what -L_REPA would be for that prediction. pred is [P, dim] (the same for every image)
 * or [n, P, dim] (one per id).
 */
export function cosineToTargets(pred: Float32Array, teacher: Teacher, ids: readonly string[]): number {
  const D = teacher.dim, row = patchCount(teacher) * D;
  if (pred.length !== row && pred.length !== ids.length * row) {
    fail('ERR_VALR_SHAPE', `cosineToTargets: pred has ${pred.length} values, expected [P, dim] = ${row} or [n, P, dim] = ${ids.length * row}`);
  }
  if (ids.length === 0) fail('ERR_VALR_ARGUMENT', 'cosineToTargets: needs at least one image id');
  const t = teacher.batch(ids), perImage = pred.length !== row;
  let sum = 0;
  for (let i = 0; i < t.length; i += D) sum += cosine(pred, perImage ? i : i % row, t, i, D);
  return sum / (t.length / D);
}

export interface MeanFeatureBaseline {
  /**
   * Prediction: position p's mean feature over the training images. A mean row whose norm
   * is below 1e-5 of the average feature norm counts as zero and scores 0 (see below).
   */
  perPosition: number;
  /** Prediction: the mean feature over all training patches, at every position. */
  global: number;
  /**
   * Prediction: position p's mean of unit-normalised training features, the constant per
   * position with the highest mean cosine over the training images: what a projector that
   * ignores the image converges to. With position-centred targets the plain mean is ~0 and
   * says little; this is the bound to read.
   */
  perPositionDirection: number;
}

/**
 * What a prediction with no image information scores: the mean cosine, over evalIds'
 * patches, between each target and a constant built from trainIds (see the fields). High
 * values mean the REPA loss can be satisfied without looking at the image.
 */
export function meanFeatureBaseline(teacher: Teacher, trainIds: readonly string[], evalIds: readonly string[]): MeanFeatureBaseline {
  const ids = [...new Set(trainIds)]; // as in computeTeacherStats: an image counts once
  if (ids.length === 0) fail('ERR_VALR_ARGUMENT', 'meanFeatureBaseline: needs at least one training image id');
  const D = teacher.dim, P = patchCount(teacher), row = P * D;
  const acc = new Float64Array(row), unit = new Float64Array(row);
  let normSum = 0;
  for (let b = 0; b < ids.length; b += 64) {
    const f = teacher.batch(ids.slice(b, b + 64));
    for (let i = 0; i < f.length; i += D) {
      let nn = 0;
      for (let c = 0; c < D; c++) nn += f[i + c] * f[i + c];
      normSum += Math.sqrt(nn);
      const inv = 1 / Math.max(Math.sqrt(nn), 1e-8), j = i % row;
      for (let c = 0; c < D; c++) {
        acc[j + c] += f[i + c];
        unit[j + c] += f[i + c] * inv;
      }
    }
  }
  const g = new Float64Array(D);
  for (let j = 0; j < row; j++) g[j % D] += acc[j];
  // [P, D] predictions, one row per patch position
  const perPos = Float32Array.from(acc, (x) => x / ids.length);
  const global = Float32Array.from({ length: row }, (_, j) => g[j % D] / (ids.length * P));
  // A mean that is zero up to rounding (centred features) predicts nothing: score it 0
  // rather than the cosine of its rounding noise.
  const tiny = 1e-5 * (normSum / (ids.length * P));
  for (const pred of [perPos, global]) {
    for (let j = 0; j < row; j += D) {
      let nn = 0;
      for (let c = 0; c < D; c++) nn += pred[j + c] * pred[j + c];
      if (Math.sqrt(nn) <= tiny) pred.fill(0, j, j + D);
    }
  }
  return {
    perPosition: cosineToTargets(perPos, teacher, evalIds),
    global: cosineToTargets(global, teacher, evalIds),
    perPositionDirection: cosineToTargets(Float32Array.from(unit, (x) => x / ids.length), teacher, evalIds),
  };
}
