// Statistics over seeds for the benchmarks (bench/sft.bench.ts): mean and sample standard
// deviation, Student-t quantiles and 95% t-intervals of per-seed paired differences, the
// pooled per-question paired bootstrap over every seed's questions, and which seeds a
// comparison with the baseline may use given the baseline's image-use gate.
import { fail } from '../errors';
import { pairedInterval } from '../train/image-gate';

export interface MeanStd {
  mean: number;
  /** sample standard deviation (n - 1 in the denominator); NaN for fewer than 2 values */
  std: number;
  n: number;
}

export interface Interval {
  mean: number;
  lo: number;
  hi: number;
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Sample standard deviation (Bessel's correction); NaN for fewer than 2 values. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

export function meanStd(xs: readonly number[]): MeanStd {
  return { mean: mean(xs), std: sampleStd(xs), n: xs.length };
}

// log Gamma (Lanczos, g = 7, 9 terms; ~1e-15 relative for x > 0).
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = LANCZOS[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

// Continued fraction of the incomplete beta function (modified Lentz).
function betaContinuedFraction(a: number, b: number, x: number): number {
  const TINY = 1e-300;
  let c = 1, d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d; if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c; if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d; h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d; if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c; if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(a, b, x)) / a : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** The CDF of Student's t distribution with df degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) fail('ERR_VALR_ARGUMENT', `studentTCdf: df must be positive, got ${df}`);
  if (t === 0) return 0.5;
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5); // P(T > |t|)
  return t > 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t distribution with df degrees of freedom (e.g. p 0.975, df 4: 2.776). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) fail('ERR_VALR_ARGUMENT', `studentTQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) fail('ERR_VALR_ARGUMENT', `studentTQuantile: df must be positive, got ${df}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  if (df === 1) return Math.tan(Math.PI * (p - 0.5)); // Cauchy: exact
  if (df === 2) return (2 * p - 1) / Math.sqrt(2 * p * (1 - p)); // exact
  let lo = 0, hi = 1;
  while (studentTCdf(hi, df) < p) [lo, hi] = [hi, hi * 2];
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Mean and two-sided t-interval of the mean (level 0.95 by default); lo/hi NaN for fewer than 2 values. */
export function tInterval(xs: readonly number[], level = 0.95): Interval & { n: number; std: number } {
  const n = xs.length;
  const m = mean(xs), sd = sampleStd(xs);
  if (n < 2) return { mean: m, lo: NaN, hi: NaN, n, std: sd };
  const half = studentTQuantile(1 - (1 - level) / 2, n - 1) * (sd / Math.sqrt(n));
  return { mean: m, lo: m - half, hi: m + half, n, std: sd };
}

/** Per-seed paired differences arm - baseline (same seed, same test questions) and their 95% t-interval. */
export function seedPairedDifference(arm: readonly number[], baseline: readonly number[], level = 0.95) {
  if (arm.length !== baseline.length) fail('ERR_VALR_SHAPE', `seedPairedDifference: ${arm.length} arm values but ${baseline.length} baseline values`);
  const diffs = arm.map((a, i) => a - baseline[i]);
  return { diffs, ...tInterval(diffs, level) };
}

/**
 * Per-question paired differences arm - baseline pooled over every seed's test questions
 * (0/1 correctness per question, seed by seed), with a 95% percentile-bootstrap interval
 * over questions. It treats the questions as the only source of variation (no seed-to-seed
 * training variance), so it is narrower than the t-interval over seeds.
 */
export function pooledPairedInterval(arm: readonly (readonly number[])[], baseline: readonly (readonly number[])[], seed = 0): Interval & { n: number } {
  if (arm.length !== baseline.length) fail('ERR_VALR_SHAPE', `pooledPairedInterval: ${arm.length} arm seeds but ${baseline.length} baseline seeds`);
  const diffs: number[] = [];
  arm.forEach((a, s) => {
    if (a.length !== baseline[s].length) fail('ERR_VALR_SHAPE', `pooledPairedInterval: seed ${s} has ${a.length} arm answers but ${baseline[s].length} baseline answers`);
    a.forEach((v, i) => diffs.push(v - baseline[s][i]));
  });
  return { ...pairedInterval(diffs, seed), n: diffs.length };
}

export type Verdict = 'better' | 'worse' | 'no measurable difference' | 'not enough seeds';

/** better: the interval lies above 0; worse: below 0; otherwise no measurable difference. */
export function verdict(i: { lo: number; hi: number }): Verdict {
  if (!Number.isFinite(i.lo) || !Number.isFinite(i.hi)) return 'not enough seeds';
  return i.lo > 0 ? 'better' : i.hi < 0 ? 'worse' : 'no measurable difference';
}

export interface ComparisonScope {
  /**
   * 'all': the baseline passed the image-use gate in every seed (unqualified comparison);
   * 'passing': in a majority but not all (the comparison uses the passing seeds only);
   * 'none': in half of the seeds or fewer (no comparison is drawn).
   */
  mode: 'all' | 'passing' | 'none';
  /** indices of the seeds the comparison uses (empty for 'none') */
  seeds: number[];
  /** indices of the seeds where the baseline failed the gate */
  failed: number[];
  passed: number;
  total: number;
}

/** Which seeds a comparison with the baseline may use, from the baseline's gate per seed. */
export function comparisonScope(baselinePassed: readonly boolean[]): ComparisonScope {
  const passing = baselinePassed.flatMap((p, i) => (p ? [i] : []));
  const failed = baselinePassed.flatMap((p, i) => (p ? [] : [i]));
  const total = baselinePassed.length;
  const mode = total > 0 && failed.length === 0 ? 'all' : passing.length * 2 > total ? 'passing' : 'none';
  return { mode, seeds: mode === 'none' ? [] : passing, failed, passed: passing.length, total };
}

/** Per-question correctness as a compact string of 0s and 1s (for re-analysis from JSON). */
export function encodeCorrectness(ok: readonly (boolean | number)[]): string {
  return ok.map((v) => (v ? '1' : '0')).join('');
}

export function decodeCorrectness(s: string): number[] {
  return [...s].map((c) => (c === '1' ? 1 : c === '0' ? 0 : fail('ERR_VALR_ARGUMENT', `correctness strings hold only 0 and 1, got '${c}'`)));
}
