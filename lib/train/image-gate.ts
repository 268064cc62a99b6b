// The image-use gate: does the model look at its images? A VaLR-vs-SFT comparison means
// something only if the baseline has learned the task from the images, so every
// evaluation measures, on the held-out split:
//   - teacher-forced cross-entropy (step text and answer) with the real images and with
//     every sample's images swapped for another sample's with the same number of views;
//   - generated-answer accuracy with real and with swapped images (paired per question);
//   - the blind baseline: each family's most common training answer.
// The gate passes when swapping clearly hurts: the 95% interval of the paired accuracy
// drop lies above zero.
import { noGrad } from '../autograd/function';
import { fail } from '../errors';
import { splitLatentSample, type LatentTokens } from '../latent/layout';
import { latentForward } from '../latent/train-forward';
import { defaultTapLayer } from '../latent/generate';
import type { MultimodalModel } from '../nn/mllm';
import { scope } from '../tensor';
import { SeededRandom } from '../latent/sampling';
import type { RepaProjector } from '../latent/repa-projector';
import type { EncodedSample, TeacherLike } from './trainer';

export interface SwappableSample {
  sceneId?: string;
  numViews: number;
}

/**
 * For each sample, a donor sample with the same number of views and, wherever the split
 * allows it, another scene. Within each view-count group the samples are laid out scene by
 * scene (largest scene first; scene order and order within a scene shuffled by the seed) and
 * each takes the donor half the group further on: no sample keeps its own scene whenever no
 * scene holds more than half of its group. Deterministic from the seed.
 */
export function swapDonors(samples: readonly SwappableSample[], seed = 0): number[] {
  const donor = samples.map((_, i) => i);
  const groups = new Map<number, number[]>();
  samples.forEach((s, i) => groups.set(s.numViews, [...(groups.get(s.numViews) ?? []), i]));
  const rand = new SeededRandom(seed);
  const shuffle = <T>(xs: T[]): T[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rand.next() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  };
  for (const members of groups.values()) {
    const byScene = new Map<string, number[]>();
    for (const i of members) {
      const key = samples[i].sceneId ?? `#${i}`;
      byScene.set(key, [...(byScene.get(key) ?? []), i]);
    }
    const scenes = shuffle([...byScene.values()].map((m) => shuffle(m.slice())));
    scenes.sort((a, b) => b.length - a.length); // stable: the shuffled order breaks ties
    const laid = scenes.flat(), n = laid.length, half = Math.floor(n / 2);
    laid.forEach((m, k) => (donor[m] = laid[(k + half) % n]));
  }
  return donor;
}

export interface CeSplit {
  /** mean CE per target token of the reasoning steps (markers and step text) */
  steps: number;
  /** mean CE per target token of <answer>, the answer and <eos> */
  answer: number;
  /** per teacher (when projectors are given): mean cosine of psi(Up(taps)) to the targets over every patch */
  alignment?: number[];
}

function meanCosine(pred: Float32Array, target: Float32Array, dim: number): number {
  let sum = 0;
  const rows = pred.length / dim;
  for (let r = 0; r < rows; r++) {
    let dot = 0, pp = 0, tt = 0;
    for (let c = r * dim; c < (r + 1) * dim; c++) {
      dot += pred[c] * target[c];
      pp += pred[c] * pred[c];
      tt += target[c] * target[c];
    }
    sum += dot / (Math.max(Math.sqrt(pp), 1e-8) * Math.max(Math.sqrt(tt), 1e-8));
  }
  return sum / Math.max(rows, 1);
}

/**
 * Teacher-forced held-out cross-entropy, split into reasoning and answer tokens, with the
 * images given per sample (pass a donor's images to measure the swap). K = 0 for plain CoT.
 * With REPA projectors and their teachers, also the alignment each psi reaches on held-out
 * segments (targets from each segment's own view).
 */
export function heldOutCE(
  model: MultimodalModel, data: readonly EncodedSample[],
  o: {
    K: number; tokens: LatentTokens & { answer: number }; image: (id: string) => Float32Array; images?: (i: number) => readonly string[]; batchSize?: number;
    tapLayer?: number; projectors?: readonly RepaProjector[]; teachers?: readonly TeacherLike[];
  },
): CeSplit {
  const projectors = o.K > 0 ? o.projectors ?? [] : [];
  if (projectors.length !== (o.K > 0 ? o.teachers ?? [] : []).length) fail('ERR_VALR_ARGUMENT', 'heldOutCE: one teacher per projector is needed');
  const cos = projectors.map(() => ({ sum: 0, n: 0 }));
  if (data.length === 0) fail('ERR_VALR_ARGUMENT', 'heldOutCE needs at least one sample');
  const bs = o.batchSize ?? 16;
  const size = 3 * model.config.vision.imageSize ** 2;
  const sums = { steps: 0, answer: 0 }, counts = { steps: 0, answer: 0 };
  for (let i = 0; i < data.length; i += bs) {
    const batch = data.slice(i, i + bs);
    const imageLists = batch.map((e, k) => o.images?.(i + k) ?? e.images);
    batch.forEach((e, k) => {
      if (imageLists[k].length !== e.images.length) fail('ERR_VALR_SHAPE', `sample ${i + k} has ${e.images.length} images but ${imageLists[k].length} were given`);
    });
    const imageIds = imageLists.flat();
    const images = new Float32Array(imageIds.length * size);
    imageIds.forEach((id, k) => images.set(o.image(id), k * size));
    for (const part of ['steps', 'answer'] as const) {
      // keep the labels of one part: the answer part starts at <answer>
      const layouts = batch.map((e) => {
        const a = e.ids.lastIndexOf(o.tokens.answer);
        const labels = e.labels.map((l, t) => ((part === 'answer') === (t >= a) ? l : -100));
        return splitLatentSample(e.ids, labels, Math.max(o.K, 1), o.tokens);
      });
      const targets = layouts.reduce((n, l) => n + l.pieceTargets.reduce((m, t) => m + t.filter((x) => x !== -100).length, 0), 0);
      if (targets === 0) continue;
      const ce = noGrad(() =>
        scope(() => {
          const out = latentForward(model.language_model, layouts, {
            K: Math.max(o.K, 1),
            tapLayer: o.tapLayer ?? defaultTapLayer(model.config.decoder.numLayers),
            embedStage: (s, ids, shape) => (s === 0 ? model.embed({ ids, shape, images, numImages: imageIds.length }) : undefined),
          });
          if (part === 'steps' && out.taps && projectors.length) {
            const segImages = out.segments.map((sg) => batch[sg.sample].segmentImages[sg.segment]);
            projectors.forEach((pr, m) => {
              const t = o.teachers![m];
              const rows = segImages.length * t.grid[0] * t.grid[1];
              cos[m].sum += meanCosine(pr.forward(out.taps!).value.toArray() as Float32Array, t.batch(segImages), t.dim) * rows;
              cos[m].n += rows;
            });
          }
          return (out.ce.value.toArray() as Float32Array)[0];
        }),
      );
      sums[part] += ce * targets;
      counts[part] += targets;
    }
  }
  const res: CeSplit = { steps: sums.steps / Math.max(counts.steps, 1), answer: sums.answer / Math.max(counts.answer, 1) };
  if (projectors.length) res.alignment = cos.map((c) => c.sum / Math.max(c.n, 1));
  return res;
}

export interface BlindBaseline {
  /** the most common training answer of each family */
  answers: Record<string, string>;
  accuracy: number;
  byFamily: Record<string, number>;
}

/** Accuracy of always answering each family's most common training answer (ties: first seen). */
export function blindBaseline(train: readonly { family: string; answer: string }[], test: readonly { family: string; answer: string }[], normalize: (a: string) => string = (a) => a): BlindBaseline {
  const freq = new Map<string, Map<string, number>>();
  for (const s of train) {
    const f = freq.get(s.family) ?? new Map<string, number>();
    const a = normalize(s.answer);
    f.set(a, (f.get(a) ?? 0) + 1);
    freq.set(s.family, f);
  }
  const answers: Record<string, string> = {};
  for (const [family, f] of freq) answers[family] = [...f.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const byFamilyHits: Record<string, [number, number]> = {};
  let hits = 0;
  for (const s of test) {
    const ok = answers[s.family] === normalize(s.answer);
    if (ok) hits++;
    const h = (byFamilyHits[s.family] ??= [0, 0]);
    h[0] += ok ? 1 : 0;
    h[1]++;
  }
  const byFamily: Record<string, number> = {};
  for (const [f, [h, n]] of Object.entries(byFamilyHits)) byFamily[f] = h / n;
  return { answers, accuracy: test.length ? hits / test.length : 0, byFamily };
}

/** Mean and 95% percentile-bootstrap interval of the mean of paired differences. */
export function pairedInterval(diffs: readonly number[], seed = 0, resamples = 2000): { mean: number; lo: number; hi: number } {
  const n = diffs.length;
  if (n === 0) return { mean: NaN, lo: NaN, hi: NaN };
  const mean = diffs.reduce((a, b) => a + b, 0) / n;
  const rand = new SeededRandom(seed);
  const means: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += diffs[Math.floor(rand.next() * n)];
    means.push(s / n);
  }
  means.sort((a, b) => a - b);
  return { mean, lo: means[Math.floor(0.025 * resamples)], hi: means[Math.min(resamples - 1, Math.ceil(0.975 * resamples) - 1)] };
}

export interface GateResult {
  accuracyReal: number;
  accuracySwapped: number;
  /** real - swapped, per question, with its 95% interval */
  drop: { mean: number; lo: number; hi: number };
  ceReal: CeSplit;
  ceSwapped: CeSplit;
  blind: BlindBaseline;
  passed: boolean;
  verdict: string;
}

/** The gate's verdict from per-question correctness with real and swapped images. */
export function gateVerdict(okReal: readonly boolean[], okSwapped: readonly boolean[], ceReal: CeSplit, ceSwapped: CeSplit, blind: BlindBaseline, seed = 0): GateResult {
  if (okReal.length !== okSwapped.length) fail('ERR_VALR_SHAPE', `real (${okReal.length}) and swapped (${okSwapped.length}) results must pair up`);
  const mean = (xs: readonly boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : 0);
  const drop = pairedInterval(okReal.map((r, i) => Number(r) - Number(okSwapped[i])), seed);
  const passed = drop.lo > 0;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const verdict = passed
    ? `image-use gate PASSED: accuracy ${pct(mean(okReal))} with real images vs ${pct(mean(okSwapped))} with swapped images (drop ${pct(drop.mean)}, 95% interval ${pct(drop.lo)} to ${pct(drop.hi)}); blind baseline ${pct(blind.accuracy)}`
    : `image-use gate FAILED: accuracy ${pct(mean(okReal))} with real images vs ${pct(mean(okSwapped))} with swapped images (drop ${pct(drop.mean)}, 95% interval ${pct(drop.lo)} to ${pct(drop.hi)}, which includes 0); blind baseline ${pct(blind.accuracy)}. This model does not measurably use its images.`;
  return { accuracyReal: mean(okReal), accuracySwapped: mean(okSwapped), drop, ceReal, ceSwapped, blind, passed, verdict };
}
