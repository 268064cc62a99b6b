// The statistics of the VaLR-vs-SFT benchmark (lib/pipeline/stats.ts), against values
// worked out by hand (and Student-t table values), with inputs chosen so that the usual
// mistakes fail: population instead of sample std, a normal (1.96) instead of a t quantile,
// unpaired instead of paired differences, a majority rule off by one.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pairedInterval } from '../lib/train/image-gate';
import {
  comparisonScope, decodeCorrectness, encodeCorrectness, mean, meanStd, pooledPairedInterval, sampleStd, seedPairedDifference,
  studentTCdf, studentTQuantile, tInterval, verdict,
} from '../lib/pipeline/stats';
import { assertScalarClose, assertThrowsCode } from './helpers/check';

const test = suite('bench statistics');

test('mean and sample standard deviation (n - 1)', () => {
  // [1, 2, 3, 4]: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, sample variance 5/3
  assert.is(mean([1, 2, 3, 4]), 2.5);
  assertScalarClose(sampleStd([1, 2, 3, 4]), Math.sqrt(5 / 3), 1e-12, 1e-12, 'not sqrt(5/4) = 1.118');
  assertScalarClose(sampleStd([1, 2, 3, 4]), 1.2909944487358056, 1e-12, 1e-12);
  const m = meanStd([0.3, 0.5]);
  assertScalarClose(m.mean, 0.4, 1e-12, 0);
  assertScalarClose(m.std, Math.sqrt(0.02), 1e-12, 1e-12, '(0.01 + 0.01) / 1');
  assert.is(m.n, 2);
  assert.ok(Number.isNaN(sampleStd([0.7])), 'one value has no sample std');
  assert.ok(Number.isNaN(mean([])));
});

test('Student t quantiles match the table', () => {
  const table: [number, number, number][] = [
    [0.975, 1, 12.706], [0.975, 2, 4.303], [0.975, 3, 3.182], [0.975, 4, 2.776], [0.975, 5, 2.571],
    [0.975, 10, 2.228], [0.975, 29, 2.045], [0.975, 30, 2.042], [0.95, 5, 2.015], [0.995, 7, 3.499],
  ];
  for (const [p, df, t] of table) assertScalarClose(studentTQuantile(p, df), t, 5e-4, 0, `t(${p}, ${df})`);
  // more digits where they are known
  assertScalarClose(studentTQuantile(0.975, 4), 2.7764451051977934, 1e-9, 0, 't(0.975, 4)');
  assertScalarClose(studentTQuantile(0.975, 1), 12.706204736174694, 1e-9, 0, 't(0.975, 1)');
  assertScalarClose(studentTQuantile(0.975, 10), 2.228138851986274, 1e-9, 0, 't(0.975, 10)');
  assertScalarClose(studentTQuantile(0.999, 1), 318.30883898555015, 1e-6, 0, 't(0.999, 1)');
  assertScalarClose(studentTQuantile(0.975, 2.5), 3.5746548420036817, 1e-8, 0, 'fractional df');
  assertScalarClose(studentTQuantile(0.975, 1e6), 1.959966356814107, 1e-6, 0, 'large df -> normal');
  // symmetry and the median
  assertScalarClose(studentTQuantile(0.025, 4), -2.7764451051977934, 1e-9, 0, 'lower tail');
  assert.is(studentTQuantile(0.5, 3), 0);
  // the CDF it inverts
  assertScalarClose(studentTCdf(2, 3), 0.9303370157205785, 1e-12, 0, 'F(2; 3)');
  assertScalarClose(studentTCdf(-1.5, 7), 0.088649243494985, 1e-12, 0, 'F(-1.5; 7)');
  assertScalarClose(studentTCdf(studentTQuantile(0.9, 6), 6), 0.9, 1e-12, 0, 'round trip');
  assertThrowsCode(() => studentTQuantile(1, 4), 'ERR_VALR_ARGUMENT');
  assertThrowsCode(() => studentTQuantile(0.975, 0), 'ERR_VALR_ARGUMENT');
});

test('t-interval of the mean', () => {
  // [0.1, 0.2, 0.3, 0, -0.1]: mean 0.1, squared deviations 0 + .01 + .04 + .01 + .04 = 0.1,
  // sample sd sqrt(0.1 / 4) = 0.158114, se 0.158114 / sqrt(5) = 0.0707107,
  // half width 2.776445 * 0.0707107 = 0.196324 (with 1.96 it would be 0.138593)
  const r = tInterval([0.1, 0.2, 0.3, 0, -0.1]);
  assertScalarClose(r.mean, 0.1, 1e-12, 0);
  assertScalarClose(r.std, Math.sqrt(0.025), 1e-12, 0);
  assertScalarClose(r.lo, -0.09632431614775565, 1e-9, 0, 'lo');
  assertScalarClose(r.hi, 0.2963243161477557, 1e-9, 0, 'hi');
  assert.is(r.n, 5);
  const one = tInterval([0.4]);
  assert.is(one.mean, 0.4);
  assert.ok(Number.isNaN(one.lo) && Number.isNaN(one.hi), 'no interval from one seed');
});

test('per-seed paired difference: pairing removes the seed-to-seed spread', () => {
  // arm - baseline per seed: 0.05, 0.04, 0.06: mean 0.05, sd 0.01, se 0.01 / sqrt(3) = 0.0057735,
  // half width 4.302653 * 0.0057735 = 0.024841: [0.025159, 0.074841], better.
  // Unpaired (difference of means, Welch) the same numbers give p = 0.58: no difference.
  const d = seedPairedDifference([0.5, 0.7, 0.6], [0.45, 0.66, 0.54]);
  d.diffs.forEach((x, i) => assertScalarClose(x, [0.05, 0.04, 0.06][i], 1e-12, 0, `diff ${i}`));
  assertScalarClose(d.mean, 0.05, 1e-12, 0);
  assertScalarClose(d.lo, 0.02515862288249663, 1e-9, 0, 'lo');
  assertScalarClose(d.hi, 0.07484137711750327, 1e-9, 0, 'hi');
  assert.is(verdict(d), 'better');
  // every seed positive, but three seeds with this spread do not settle it:
  // diffs 0.1, 0.15, 0.05: mean 0.1, sd 0.05, half width 4.302653 * 0.05 / sqrt(3) = 0.124207
  const e = seedPairedDifference([0.5, 0.6, 0.55], [0.4, 0.45, 0.5]);
  assertScalarClose(e.lo, -0.024206885587516505, 1e-9, 0, 'lo');
  assertScalarClose(e.hi, 0.2242068855875165, 1e-9, 0, 'hi');
  assert.is(verdict(e), 'no measurable difference');
  assert.is(verdict(seedPairedDifference([0.45, 0.66, 0.54], [0.5, 0.7, 0.6])), 'worse', 'the mirror image');
  assert.is(verdict(seedPairedDifference([0.5], [0.4])), 'not enough seeds');
  assertThrowsCode(() => seedPairedDifference([0.5, 0.6], [0.4]), 'ERR_VALR_SHAPE');
});

test('pooled per-question paired bootstrap over seeds', () => {
  // seed 0: arm 1 1 0 1, base 1 0 0 0 -> diffs 0 1 0 1; seed 1: arm 0 1, base 1 1 -> diffs -1 0
  // pooled: 0 1 0 1 -1 0: mean 1/6 (the mean of the per-seed means, 0.5 and -0.5, would be 0)
  const arm = [[1, 1, 0, 1], [0, 1]], base = [[1, 0, 0, 0], [1, 1]];
  const r = pooledPairedInterval(arm, base, 7);
  assertScalarClose(r.mean, 1 / 6, 1e-12, 0);
  assert.is(r.n, 6);
  const ref = pairedInterval([0, 1, 0, 1, -1, 0], 7);
  assert.is(r.lo, ref.lo);
  assert.is(r.hi, ref.hi);
  assert.ok(r.lo <= r.mean && r.mean <= r.hi);
  // identical answers: a zero-width interval at 0
  const same = pooledPairedInterval([[1, 0, 1], [0, 0]], [[1, 0, 1], [0, 0]]);
  assert.equal([same.mean, same.lo, same.hi], [0, 0, 0]);
  assertThrowsCode(() => pooledPairedInterval([[1, 0]], [[1]]), 'ERR_VALR_SHAPE');
  assertThrowsCode(() => pooledPairedInterval([[1], [0]], [[1]]), 'ERR_VALR_SHAPE');
});

test('comparison scope from the baseline gate per seed', () => {
  assert.equal(comparisonScope([true, true, true]), { mode: 'all', seeds: [0, 1, 2], failed: [], passed: 3, total: 3 });
  assert.equal(comparisonScope([true, false, true, true, false]), { mode: 'passing', seeds: [0, 2, 3], failed: [1, 4], passed: 3, total: 5 });
  // exactly half is not a majority
  assert.equal(comparisonScope([true, false]), { mode: 'none', seeds: [], failed: [1], passed: 1, total: 2 });
  assert.equal(comparisonScope([false, true, false, true]).mode, 'none');
  assert.equal(comparisonScope([false, false, true]), { mode: 'none', seeds: [], failed: [0, 1], passed: 1, total: 3 });
  assert.equal(comparisonScope([true]).mode, 'all');
  assert.equal(comparisonScope([]).mode, 'none');
});

test('verdict from an interval', () => {
  assert.is(verdict({ lo: 0.001, hi: 0.2 }), 'better');
  assert.is(verdict({ lo: -0.2, hi: -0.001 }), 'worse');
  assert.is(verdict({ lo: 0, hi: 0.2 }), 'no measurable difference', 'touching 0 is not better');
  assert.is(verdict({ lo: -0.1, hi: 0.1 }), 'no measurable difference');
  assert.is(verdict({ lo: NaN, hi: NaN }), 'not enough seeds');
});

test('correctness strings round-trip', () => {
  assert.is(encodeCorrectness([true, false, false, true]), '1001');
  assert.is(encodeCorrectness([1, 0, 1]), '101');
  assert.equal(decodeCorrectness('1001'), [1, 0, 0, 1]);
  assert.equal(decodeCorrectness(''), []);
  assertThrowsCode(() => decodeCorrectness('102'), 'ERR_VALR_ARGUMENT');
});

test.run();
