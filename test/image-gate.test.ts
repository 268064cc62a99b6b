// The image-use gate (lib/train/image-gate.ts): donors for the swapped-image evaluation,
// the blind baseline, the bootstrap interval of paired differences, the verdict, and the
// held-out teacher-forced CE checked against a float64 computation from model.forward.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { noGrad } from '../lib/autograd/function';
import { generateDataset, makeDataset, type Sample } from '../lib/data/dataset';
import { MultimodalModel } from '../lib/nn/mllm';
import { presets } from '../lib/nn/presets';
import { encodeSamples, prepareData, type PreparedData } from '../lib/pipeline/experiment';
import { scope } from '../lib/tensor';
import { blindBaseline, gateVerdict, heldOutCE, pairedInterval, swapDonors, type CeSplit, type SwappableSample } from '../lib/train/image-gate';
import type { EncodedSample } from '../lib/train/trainer';
import { assertScalarClose, assertThrowsCode, rng } from './helpers/check';

const test = suite('image-gate');

// ------------------------------------------------------------------------------------
// swapDonors

/** Checks the donor contract; returns the number of samples that got a donor from their own scene. */
function checkDonors(samples: readonly SwappableSample[], donors: number[], what: string): number {
  assert.is(donors.length, samples.length, `${what}: one donor per sample`);
  const groups = new Map<number, number[]>();
  samples.forEach((s, i) => groups.set(s.numViews, [...(groups.get(s.numViews) ?? []), i]));
  for (const [nv, members] of groups) {
    const got = members.map((m) => donors[m]).sort((a, b) => a - b);
    assert.equal(got, members, `${what}: a permutation within the ${nv}-view group`);
  }
  donors.forEach((d, i) => assert.is(samples[d].numViews, samples[i].numViews, `${what}: donor of ${i} has the same numViews`));
  const scene = (i: number) => samples[i].sceneId ?? `#${i}`;
  return donors.filter((d, i) => scene(d) === scene(i)).length;
}

test('swapDonors: same numViews, a permutation per group, never the own scene when avoidable', () => {
  const r = rng(21);
  for (let trial = 0; trial < 40; trial++) {
    // groups: 2 views: 3 scenes x 2 samples; 3 views: 5 scenes x 1 sample (no sceneId on some);
    // 4 views: a singleton; 5 views: 2 samples of one scene (a clash cannot be avoided)
    const samples: SwappableSample[] = [];
    for (let s = 0; s < 3; s++) for (let k = 0; k < 2; k++) samples.push({ sceneId: `a${s}`, numViews: 2 });
    for (let s = 0; s < 5; s++) samples.push(s % 2 ? { sceneId: `b${s}`, numViews: 3 } : { numViews: 3 });
    samples.push({ sceneId: 'c', numViews: 4 });
    samples.push({ sceneId: 'd', numViews: 5 }, { sceneId: 'd', numViews: 5 });
    // shuffle the sample order so that groups interleave
    for (let i = samples.length - 1; i > 0; i--) {
      const j = r.int(0, i);
      [samples[i], samples[j]] = [samples[j], samples[i]];
    }
    const seed = r.int(0, 1 << 30);
    const donors = swapDonors(samples, seed);
    checkDonors(samples, donors, `trial ${trial}`);
    samples.forEach((s, i) => {
      if (s.numViews === 4) assert.is(donors[i], i, 'the singleton keeps its own images');
      if (s.numViews === 2 || s.numViews === 3) assert.is.not(s.sceneId ?? `#${i}`, samples[donors[i]].sceneId ?? `#${donors[i]}`, `trial ${trial}: sample ${i} got its own scene`);
    });
    assert.equal(swapDonors(samples, seed), donors, 'deterministic for a seed');
  }
  // different seeds give different shuffles (of a 30-sample group)
  const big = Array.from({ length: 30 }, (_, i) => ({ sceneId: `s${i}`, numViews: 2 }));
  const a = swapDonors(big, 1), b = swapDonors(big, 2);
  assert.not.equal(a, b);
  assert.equal(swapDonors([], 3), []);
  assert.equal(swapDonors([{ numViews: 2 }], 3), [0]);
});

test('swapDonors: with five questions per scene (as the generator makes them) no sample keeps its own scene', () => {
  // 10 scenes x 5 samples, one view count: a donor from another scene always exists
  // (no scene holds more than half the group), e.g. shift by one scene.
  const samples = Array.from({ length: 50 }, (_, i) => ({ sceneId: `s${Math.floor(i / 5)}`, numViews: 3 }));
  const failing: string[] = [];
  for (let seed = 0; seed < 20; seed++) {
    const clashes = checkDonors(samples, swapDonors(samples, seed), `seed ${seed}`);
    if (clashes) failing.push(`seed ${seed}: ${clashes}`);
  }
  assert.equal(failing, [], `samples that kept their own scene's images, by seed (of 20 seeds)`);
});

test('swapDonors on a generated test split: no sample keeps its own scene', () => {
  const t = generateDataset({ seed: 3, train: 0, val: 0, test: 100 }).splits.test;
  const failing: string[] = [];
  for (let seed = 0; seed < 5; seed++) {
    const clashes = checkDonors(t, swapDonors(t, seed), `seed ${seed}`);
    if (clashes) failing.push(`seed ${seed}: ${clashes}`);
  }
  assert.equal(failing, [], 'samples that kept their own scene, by seed');
});

// ------------------------------------------------------------------------------------
// blindBaseline

test('blindBaseline: most common answer per family, ties to the first seen, normalize applied', () => {
  const train = [
    { family: 'count', answer: '3' }, { family: 'size', answer: 'No' },
    { family: 'count', answer: '2' }, { family: 'size', answer: 'yes ' },
    { family: 'count', answer: '2' }, { family: 'size', answer: 'YES' },
    { family: 'count', answer: '3' }, // count: 3 x2, 2 x2 -> tie -> '3' (seen first)
    { family: 'colour', answer: 'red' }, // one sample
  ];
  const test_ = [
    { family: 'count', answer: '3' }, { family: 'count', answer: '2' }, { family: 'count', answer: ' 3' },
    { family: 'size', answer: 'Yes' }, { family: 'size', answer: 'no' },
    { family: 'colour', answer: 'blue' },
    { family: 'direction', answer: 'left' }, // no training answer: always wrong
  ];
  const norm = (a: string) => a.trim().toLowerCase();
  const b = blindBaseline(train, test_, norm);
  assert.equal(b.answers, { count: '3', size: 'yes', colour: 'red' });
  // hits: count 2 of 3 (' 3' normalizes to '3'), size 1 of 2, colour 0, direction 0
  assert.equal(b.byFamily, { count: 2 / 3, size: 1 / 2, colour: 0, direction: 0 });
  assertScalarClose(b.accuracy, 3 / 7, 0, 1e-15, 'accuracy');
  // without normalize: size answers are 'No', 'yes ', 'YES' -> a three-way tie -> 'No'
  const raw = blindBaseline(train, test_);
  assert.equal(raw.answers, { count: '3', size: 'No', colour: 'red' });
  assert.equal(raw.byFamily, { count: 1 / 3, size: 0, colour: 0, direction: 0 });
  assertScalarClose(raw.accuracy, 1 / 7, 0, 1e-15, 'raw accuracy');
  // the tie rule follows the order seen, not the value
  assert.is(blindBaseline([{ family: 'f', answer: '2' }, { family: 'f', answer: '3' }], []).answers.f, '2');
  assert.is(blindBaseline([{ family: 'f', answer: '3' }, { family: 'f', answer: '2' }], []).answers.f, '3');
  const empty = blindBaseline(train, []);
  assert.is(empty.accuracy, 0);
  assert.equal(empty.byFamily, {});
});

test('blindBaseline: random families and answers against a brute force', () => {
  const r = rng(8);
  for (let trial = 0; trial < 30; trial++) {
    const fams = ['a', 'b', 'c'], answers = ['x', 'y', 'z', 'w'];
    const draw = (n: number) => Array.from({ length: n }, () => ({ family: r.pick(fams), answer: r.pick(answers.slice(0, r.int(1, 4))) }));
    const train = draw(r.int(1, 40)), tst = draw(r.int(1, 40));
    const b = blindBaseline(train, tst);
    let hits = 0;
    for (const f of fams) {
      const fTrain = train.filter((s) => s.family === f);
      if (!fTrain.length) {
        assert.is(b.answers[f], undefined);
        continue;
      }
      // most common; ties: the one whose first occurrence comes first
      let best = '', bestN = -1, bestFirst = Infinity;
      for (const a of new Set(fTrain.map((s) => s.answer))) {
        const n = fTrain.filter((s) => s.answer === a).length, first = fTrain.findIndex((s) => s.answer === a);
        if (n > bestN || (n === bestN && first < bestFirst)) [best, bestN, bestFirst] = [a, n, first];
      }
      assert.is(b.answers[f], best, `trial ${trial} family ${f}`);
      const fTest = tst.filter((s) => s.family === f);
      const h = fTest.filter((s) => s.answer === best).length;
      hits += h;
      if (fTest.length) assertScalarClose(b.byFamily[f], h / fTest.length, 0, 1e-15, `trial ${trial} byFamily ${f}`);
    }
    assertScalarClose(b.accuracy, hits / tst.length, 0, 1e-15, `trial ${trial} accuracy`);
  }
});

// ------------------------------------------------------------------------------------
// pairedInterval

test('pairedInterval: exact mean, degenerate and empty inputs', () => {
  const d = [1, 0, 0, 1, 1, -1, 0, 1];
  const p = pairedInterval(d, 4);
  assert.is(p.mean, 3 / 8);
  assert.ok(p.lo <= p.mean && p.mean <= p.hi, JSON.stringify(p));
  for (const v of [0, 1, -0.25]) {
    const q = pairedInterval(new Array(17).fill(v), 9);
    assert.equal(q, { mean: v, lo: v, hi: v }, `all ${v}`);
  }
  // 17 x 0.1 does not sum exactly: lo = hi = mean all the same (the same sum every resample)
  const q = pairedInterval(new Array(17).fill(0.1), 9);
  assert.ok(q.lo === q.mean && q.hi === q.mean, JSON.stringify(q));
  assertScalarClose(q.mean, 0.1, 0, 1e-15, 'mean of 0.1s');
  const e = pairedInterval([], 0);
  assert.ok(Number.isNaN(e.mean) && Number.isNaN(e.lo) && Number.isNaN(e.hi));
  assert.equal(pairedInterval(d, 4), p, 'deterministic for a seed');
});

test('pairedInterval: a large sample roughly matches mean +- 1.96 sd / sqrt(n)', () => {
  const r = rng(77);
  for (const [n, mu, sd] of [[400, 0.3, 1], [1000, -0.05, 0.5], [250, 2, 3]]) {
    const xs = Array.from({ length: n }, () => mu + sd * r.normal());
    let m = 0;
    for (const x of xs) m += x;
    m /= n;
    let v = 0;
    for (const x of xs) v += (x - m) ** 2;
    const se = Math.sqrt(v / (n - 1) / n);
    const p = pairedInterval(xs, 13);
    assertScalarClose(p.mean, m, 1e-12, 1e-12, 'mean');
    assert.ok(p.lo < p.mean && p.mean < p.hi, JSON.stringify(p));
    const halfLo = p.mean - p.lo, halfHi = p.hi - p.mean;
    for (const h of [halfLo, halfHi]) assert.ok(h > 0.75 * 1.96 * se && h < 1.3 * 1.96 * se, `n ${n}: half width ${h} vs normal ${1.96 * se}`);
  }
  // 0/1 paired differences (the gate's case): 60 questions, 30 better with real images
  const diffs = Array.from({ length: 60 }, (_, i) => (i % 2 ? 1 : 0));
  const p = pairedInterval(diffs, 0);
  const se = Math.sqrt(0.25 / 60);
  assert.is(p.mean, 0.5);
  assert.ok(Math.abs(p.lo - (0.5 - 1.96 * se)) < 0.4 * 1.96 * se && Math.abs(p.hi - (0.5 + 1.96 * se)) < 0.4 * 1.96 * se, JSON.stringify(p));
});

test('pairedInterval: the 2.5% and 97.5% order statistics of a percentile bootstrap (mulberry32 stream)', () => {
  // a float64 re-implementation: resample indices from the same generator, sort the means,
  // take the 51st smallest and the 1950th smallest of 2000
  const r0 = rng(99);
  const xs = Array.from({ length: 37 }, () => r0.int(-3, 5) / 4);
  for (const seed of [0, 1, 12345]) {
    const g = rng(seed);
    const means: number[] = [];
    for (let k = 0; k < 2000; k++) {
      let s = 0;
      for (let i = 0; i < xs.length; i++) s += xs[Math.floor(g.next() * xs.length)];
      means.push(s / xs.length);
    }
    means.sort((a, b) => a - b);
    const p = pairedInterval(xs, seed);
    assert.is(p.lo, means[50], `seed ${seed}: lo`);
    assert.is(p.hi, means[1949], `seed ${seed}: hi`);
  }
});

// ------------------------------------------------------------------------------------
// gateVerdict

const CE_R: CeSplit = { steps: 1.5, answer: 0.5 }, CE_S: CeSplit = { steps: 2.5, answer: 1.5 };
const BLIND = blindBaseline([{ family: 'count', answer: '2' }], [{ family: 'count', answer: '2' }, { family: 'count', answer: '3' }]);

test('gateVerdict: passes when real images clearly help, fails when they do not', () => {
  const real = new Array<boolean>(60).fill(true), swapped = Array.from({ length: 60 }, (_, i) => i % 2 === 0);
  const g = gateVerdict(real, swapped, CE_R, CE_S, BLIND, 3);
  assert.ok(g.passed);
  assert.is(g.accuracyReal, 1);
  assert.is(g.accuracySwapped, 0.5);
  assert.is(g.drop.mean, 0.5);
  assert.ok(g.drop.lo > 0.3 && g.drop.hi <= 0.7, JSON.stringify(g.drop));
  assert.is(g.ceReal, CE_R);
  assert.is(g.ceSwapped, CE_S);
  assert.is(g.blind, BLIND);
  assert.match(g.verdict, /PASSED/);
  assert.match(g.verdict, /100\.0% with real images vs 50\.0% with swapped images/);
  assert.match(g.verdict, /blind baseline 50\.0%/);
  assert.not.match(g.verdict, /FAILED|does not measurably/);

  // identical results: the drop is exactly 0, its interval [0, 0] includes 0
  const same = Array.from({ length: 60 }, (_, i) => i % 3 !== 0);
  const f = gateVerdict(same, same.slice(), CE_R, CE_R, BLIND, 3);
  assert.not.ok(f.passed);
  assert.equal(f.drop, { mean: 0, lo: 0, hi: 0 });
  assert.match(f.verdict, /FAILED/);
  assert.match(f.verdict, /does not measurably use its images/);
  assert.match(f.verdict, /66\.7% with real images vs 66\.7% with swapped images/);

  // swapped images better: fails
  assert.not.ok(gateVerdict(swapped, real, CE_R, CE_S, BLIND).passed);
  // a small, noisy gain: 3 of 60 questions better, 2 worse -> the interval includes 0
  const noisyR = Array.from({ length: 60 }, (_, i) => i < 33), noisyS = Array.from({ length: 60 }, (_, i) => i < 30 || (i >= 33 && i < 35));
  const n = gateVerdict(noisyR, noisyS, CE_R, CE_S, BLIND);
  assert.ok(n.drop.lo <= 0 && n.drop.hi > 0, JSON.stringify(n.drop));
  assert.not.ok(n.passed);
  // no questions: accuracies 0, not passed
  const z = gateVerdict([], [], CE_R, CE_S, BLIND);
  assert.not.ok(z.passed);
  assert.is(z.accuracyReal, 0);
});

test('gateVerdict: results that do not pair up are refused', () => {
  assertThrowsCode(() => gateVerdict([true, false], [true], CE_R, CE_S, BLIND), 'ERR_VALR_SHAPE');
  assertThrowsCode(() => gateVerdict([], [false], CE_R, CE_S, BLIND), 'ERR_VALR_SHAPE');
});

// ------------------------------------------------------------------------------------
// heldOutCE on a tiny untrained model

let dir = '';
let p: PreparedData;
let model: MultimodalModel;
let test_: Sample[];

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'valr-gate-'));
  await makeDataset({ dir, seed: 5, train: 10, val: 0, test: 10, numViews: [2, 3] });
  p = prepareData(dir);
  const t = presets.tiny;
  model = new MultimodalModel({
    decoder: { ...t.decoder, vocabSize: p.tok.vocabSize },
    vision: { ...t.vision, imageSize: p.ds.meta.imageSize },
    imageTokenId: p.ids.image,
  }, { seed: 17 });
  test_ = p.ds.splits.test;
});

test.after(() => {
  model?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Mean CE (float64) of the step and answer targets, from model.forward on one sample at a time. */
function referenceCE(enc: readonly EncodedSample[], images: (i: number) => readonly string[]): CeSplit {
  const sums = { steps: 0, answer: 0 }, counts = { steps: 0, answer: 0 };
  const V = model.config.decoder.vocabSize;
  enc.forEach((e, i) => {
    const ids = images(i);
    const size = 3 * model.config.vision.imageSize ** 2;
    const imgs = new Float32Array(ids.length * size);
    ids.forEach((id, k) => imgs.set(p.image(id), k * size));
    const T = e.ids.length;
    const logits = noGrad(() => scope(() => model.forward({ ids: e.ids, shape: [1, T], images: imgs, numImages: ids.length }).logits.value.toArray() as Float32Array));
    assert.is(logits.length, T * V);
    const a = Array.from(e.ids).lastIndexOf(p.ids.answer);
    assert.ok(a > 0);
    for (let j = 1; j < T; j++) {
      if (e.labels[j] === -100) continue;
      // position j - 1 predicts token j
      const row = logits.subarray((j - 1) * V, j * V);
      let mx = -Infinity;
      for (let c = 0; c < V; c++) mx = Math.max(mx, row[c]);
      let z = 0;
      for (let c = 0; c < V; c++) z += Math.exp(row[c] - mx);
      const ce = Math.log(z) + mx - row[e.labels[j]];
      const part = j >= a ? 'answer' : 'steps';
      sums[part] += ce;
      counts[part]++;
    }
  });
  assert.ok(counts.steps > 0 && counts.answer > 0);
  return { steps: sums.steps / counts.steps, answer: sums.answer / counts.answer };
}

test('heldOutCE (K = 0): own images given explicitly = the default; matches a float64 reference', () => {
  for (const viewMarkers of [true, false]) {
    const enc = encodeSamples(p, model, test_, 0, viewMarkers);
    const opts = { K: 0, tokens: p.ids, image: p.image };
    const base = heldOutCE(model, enc, opts);
    const own = heldOutCE(model, enc, { ...opts, images: (i: number) => test_[i].images });
    assert.is(own.steps, base.steps, 'steps: bit-identical');
    assert.is(own.answer, base.answer, 'answer: bit-identical');
    assert.is(base.alignment, undefined);
    const ref = referenceCE(enc, (i) => test_[i].images);
    assertScalarClose(base.steps, ref.steps, 0, 1e-4, `viewMarkers ${viewMarkers}: steps CE`);
    assertScalarClose(base.answer, ref.answer, 0, 1e-4, `viewMarkers ${viewMarkers}: answer CE`);
    // batching (with padding) does not change it beyond float noise
    for (const bs of [1, 3]) {
      const b = heldOutCE(model, enc, { ...opts, batchSize: bs });
      assertScalarClose(b.steps, ref.steps, 0, 1e-4, `batch ${bs}: steps`);
      assertScalarClose(b.answer, ref.answer, 0, 1e-4, `batch ${bs}: answer`);
    }
    // an untrained model is near log(vocab) per token
    const logV = Math.log(model.config.decoder.vocabSize);
    assert.ok(Math.abs(ref.steps - logV) < 2 && Math.abs(ref.answer - logV) < 2, `${JSON.stringify(ref)} vs log V ${logV}`);
  }
});

test('heldOutCE (K = 0): swapped images change the CE, and match the reference with the donor images', () => {
  const enc = encodeSamples(p, model, test_, 0, true);
  const donors = swapDonors(test_, 1);
  assert.ok(donors.some((d, i) => test_[d].images[0] !== test_[i].images[0]), 'some sample gets other images');
  const opts = { K: 0, tokens: p.ids, image: p.image, batchSize: 4 };
  const real = heldOutCE(model, enc, opts);
  const sw = heldOutCE(model, enc, { ...opts, images: (i: number) => test_[donors[i]].images });
  assert.ok(Math.abs(sw.steps - real.steps) > 1e-5, `steps: real ${real.steps}, swapped ${sw.steps}`);
  assert.ok(Math.abs(sw.answer - real.answer) > 1e-6, `answer: real ${real.answer}, swapped ${sw.answer}`);
  const ref = referenceCE(enc, (i) => test_[donors[i]].images);
  assertScalarClose(sw.steps, ref.steps, 0, 1e-4, 'swapped steps CE');
  assertScalarClose(sw.answer, ref.answer, 0, 1e-4, 'swapped answer CE');
});

test('heldOutCE: bad inputs', () => {
  const enc = encodeSamples(p, model, test_, 0, true);
  const opts = { K: 0, tokens: p.ids, image: p.image };
  assertThrowsCode(() => heldOutCE(model, [], opts), 'ERR_VALR_ARGUMENT');
  // a donor list of the wrong length
  assertThrowsCode(() => heldOutCE(model, enc, { ...opts, images: (i: number) => [...test_[i].images, test_[i].images[0]] }), 'ERR_VALR_SHAPE');
});

test.run();
