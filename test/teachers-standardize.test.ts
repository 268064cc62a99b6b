// Teacher standardisation (lib/teachers/standardize.ts): statistics against a float64
// reference, the standardised features' moments, the "no image information" baseline on
// the synthetic teachers before and after (the reason for the change), bad stats, and a
// JSON round trip of the stats.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generateDataset } from '../lib/data/dataset';
import { ValrError } from '../lib/errors';
import {
  StandardizedTeacher,
  computeTeacherStats,
  cosineToTargets,
  makeTeacher,
  meanFeatureBaseline,
  type MeanFeatureBaseline,
  type StandardizeMode,
  type Teacher,
  type TeacherStats,
} from '../lib/teachers';
import { assertBitsEqual, assertClose, assertThrowsCode, maxAbs, rng } from './helpers/check';

// ------------------------------------------------------------------------------------
// A teacher with random features per image id. Channel 0 has a large offset and a small
// spread (cancellation in naive sums), channel 1 is constant (the std floor), channel 2
// depends on the patch position (what 'position' mode removes).

const G: [number, number] = [2, 3], P = 6, D = 5;
function randomTeacher(): Teacher & { calls: number } {
  const t = {
    name: 'random',
    grid: G,
    dim: D,
    calls: 0,
    features(id: string): Float32Array {
      t.calls++;
      const r = rng([...id].reduce((h, ch) => Math.imul(h ^ ch.charCodeAt(0), 16777619), 2166136261));
      const f = r.floats(P * D);
      for (let p = 0; p < P; p++) {
        f[p * D] = 1000 + 1e-2 * f[p * D];
        f[p * D + 1] = 7.25;
        f[p * D + 2] += 3 * p;
      }
      return f;
    },
    batch(ids: readonly string[]): Float32Array {
      const out = new Float32Array(ids.length * P * D);
      ids.forEach((id, i) => out.set(t.features(id), i * P * D));
      return out;
    },
  };
  return t;
}
const IDS = Array.from({ length: 40 }, (_, i) => `img-${i}`);

/** Two-pass float64 moments of the features of `ids`, written independently of the library. */
function reference(t: Teacher, ids: string[], mode: StandardizeMode) {
  const feats = ids.map((id) => Float64Array.from(t.features(id)));
  const n = ids.length;
  const posMean = new Float64Array(P * D);
  for (const f of feats) for (let j = 0; j < P * D; j++) posMean[j] += f[j] / n;
  const mean = new Float64Array(D);
  for (let j = 0; j < P * D; j++) mean[j % D] += posMean[j] / P;
  const variance = new Float64Array(D);
  for (const f of feats)
    for (let j = 0; j < P * D; j++) {
      const centre = mode === 'channel' ? mean[j % D] : posMean[j];
      variance[j % D] += (f[j] - centre) ** 2 / (n * P);
    }
  return { mean: Array.from(mode === 'channel' ? mean : posMean), std: Array.from(variance, Math.sqrt) };
}

/** Per-channel mean and std of standardised features, and their per-(position, channel) means. */
function moments(f: Float32Array, n: number, dim: number, row: number) {
  const mean = new Float64Array(dim), sq = new Float64Array(dim), pos = new Float64Array(row);
  for (let i = 0; i < f.length; i++) {
    mean[i % dim] += f[i] / (f.length / dim);
    sq[i % dim] += (f[i] * f[i]) / (f.length / dim);
    pos[i % row] += f[i] / n;
  }
  return { mean: [...mean], std: [...mean].map((m, c) => Math.sqrt(Math.max(0, sq[c] - m * m))), pos: [...pos] };
}

// ------------------------------------------------------------------------------------
const stats = suite('teachers-standardize: stats');

stats('computeTeacherStats matches a float64 reference in both modes', () => {
  const t = randomTeacher();
  for (const mode of ['channel', 'position'] as const) {
    const s = computeTeacherStats(t, IDS, { mode, batchSize: 7 });
    const ref = reference(t, IDS, mode);
    assert.is(s.teacher, 'random');
    assert.is(s.mode, mode);
    assert.is(s.dim, D);
    assert.equal(s.grid, [2, 3]);
    assert.is(s.images, IDS.length);
    assert.is(s.mean.length, mode === 'channel' ? D : P * D);
    assert.is(s.std.length, D);
    assertClose(s.mean, ref.mean, 1e-12, 1e-12, `${mode} mean`);
    // channel 1 is constant: floored at 1e-3 of the largest std, not 0
    const floor = 1e-3 * Math.max(...ref.std);
    assert.ok(ref.std[1] < 1e-12 && Math.abs(s.std[1] - floor) <= 1e-9 * floor, `${mode} std floor: ${s.std[1]} vs ${floor}`);
    const others = [0, 2, 3, 4];
    assertClose(others.map((c) => s.std[c]), others.map((c) => ref.std[c]), 0, 1e-9, `${mode} std`);
    // the offset channel keeps its small spread (no cancellation): ~1e-2 around 1000
    assert.ok(s.std[0] > 7e-3 && s.std[0] < 1.3e-2, `${mode} std[0] = ${s.std[0]}`);
  }
  // channel mode includes the spread of the position means; position mode does not
  const c = computeTeacherStats(t, IDS), p = computeTeacherStats(t, IDS, { mode: 'position' });
  assert.ok(c.std[2] > 1.5 * p.std[2], `position-dependent channel: ${c.std[2]} vs ${p.std[2]}`);
});

stats('repeated ids count once; maxImages keeps the first distinct ids; bad options', () => {
  const t = randomTeacher();
  const a = computeTeacherStats(t, [...IDS.slice(0, 10), ...IDS.slice(0, 5)]);
  const b = computeTeacherStats(t, IDS.slice(0, 10));
  assert.equal(a, b);
  assert.is(a.images, 10);
  assert.equal(computeTeacherStats(t, [IDS[0], IDS[0], ...IDS.slice(1)], { maxImages: 10 }), b);
  assertThrowsCode(() => computeTeacherStats(t, []), 'ERR_VALR_ARGUMENT', /at least one image/);
  assertThrowsCode(() => computeTeacherStats(t, IDS, { maxImages: 0 }), 'ERR_VALR_ARGUMENT', /maxImages/);
  assertThrowsCode(() => computeTeacherStats(t, IDS, { mode: 'patch' as StandardizeMode }), 'ERR_VALR_ARGUMENT', /mode/);
  assertThrowsCode(() => computeTeacherStats(t, IDS, { minStdRatio: 1 }), 'ERR_VALR_ARGUMENT', /minStdRatio/);
  const nan = { ...randomTeacher(), batch: (ids: readonly string[]) => new Float32Array(ids.length * P * D).fill(NaN) };
  assertThrowsCode(() => computeTeacherStats(nan, IDS), 'ERR_VALR_RANGE', /NaN for image 'img-0', patch 0, channel 0/);
  const short = { ...randomTeacher(), batch: () => new Float32Array(3) };
  assertThrowsCode(() => computeTeacherStats(short, IDS), 'ERR_VALR_SHAPE', /returned 3 values/);
});

stats('standardised features: per-channel mean 0 and std 1 over the stats images', () => {
  const t = randomTeacher();
  for (const mode of ['channel', 'position'] as const) {
    const s = new StandardizedTeacher(t, computeTeacherStats(t, IDS, { mode }));
    const m = moments(s.batch(IDS), IDS.length, D, P * D);
    const live = [0, 2, 3, 4];
    assertClose(live.map((c) => m.mean[c]), [0, 0, 0, 0], 1e-5, 0, `${mode} mean`);
    assertClose(m.mean.slice(1, 2).concat(m.std.slice(1, 2)), [0, 0], 1e-9, 0, `${mode} constant channel maps to 0`);
    if (mode === 'channel') assertClose(live.map((c) => m.std[c]), [1, 1, 1, 1], 1e-4, 0, `${mode} std`);
    // position mode: every (position, channel) is centred; std 1 around the position means
    else {
      assertClose(m.pos, new Array(P * D).fill(0), 1e-4, 0, 'position means');
      assertClose(live.map((c) => m.std[c]), [1, 1, 1, 1], 1e-4, 0, 'position std');
    }
  }
});

stats('StandardizedTeacher: inner name, grid and dim; batch stacks features; inner arrays untouched', () => {
  const t = randomTeacher(), s = new StandardizedTeacher(t, computeTeacherStats(t, IDS));
  assert.is(s.name, 'random');
  assert.equal([...s.grid], [2, 3]);
  assert.is(s.dim, D);
  const b = s.batch(['img-3', 'img-1']);
  assertBitsEqual(b.subarray(0, P * D), s.features('img-3'), 'batch row 0');
  assertBitsEqual(b.subarray(P * D), s.features('img-1'), 'batch row 1');
  const shared = t.features('img-2'); // an inner teacher that hands out its own array
  const sharing: Teacher = { ...t, features: () => shared, batch: () => shared };
  const before = shared.slice();
  new StandardizedTeacher(sharing, s.stats).features('img-2');
  assertBitsEqual(shared, before, 'inner array');
  // the stats are copied: editing the caller's object later changes nothing
  const st = computeTeacherStats(t, IDS), s2 = new StandardizedTeacher(t, st), f = s2.features('img-5');
  st.mean[0] = -1;
  assertBitsEqual(s2.features('img-5'), f, 'after editing the stats');
});

// ------------------------------------------------------------------------------------
const bad = suite('teachers-standardize: bad stats');

bad('wrong dim, grid or lengths: ERR_VALR_SHAPE naming expected and actual; non-finite: ERR_VALR_ARGUMENT', () => {
  const t = randomTeacher(), good = computeTeacherStats(t, IDS), pos = computeTeacherStats(t, IDS, { mode: 'position' });
  const make = (s: unknown) => () => new StandardizedTeacher(t, s as TeacherStats);
  assertThrowsCode(make({ ...good, dim: 4 }), 'ERR_VALR_SHAPE', /stats\.dim is 4, the teacher's dim is 5/);
  assertThrowsCode(make({ ...good, grid: [3, 2] }), 'ERR_VALR_SHAPE', /stats\.grid is \[3,2\], the teacher's grid is \[2,3\]/);
  assertThrowsCode(make({ ...good, grid: [2] }), 'ERR_VALR_SHAPE', /grid/);
  assertThrowsCode(make({ ...good, mean: good.mean.slice(1) }), 'ERR_VALR_SHAPE', /stats\.mean has 4 values, expected dim = 5/);
  assertThrowsCode(make({ ...good, std: [...good.std, 1] }), 'ERR_VALR_SHAPE', /stats\.std has 6 values, expected dim = 5/);
  assertThrowsCode(make({ ...pos, mean: good.mean }), 'ERR_VALR_SHAPE', /stats\.mean has 5 values, expected P \* dim = 30/);
  assertThrowsCode(make({ ...good, mode: 'position' }), 'ERR_VALR_SHAPE', /expected P \* dim = 30/);
  assertThrowsCode(make({ ...good, mean: [NaN, ...good.mean.slice(1)] }), 'ERR_VALR_ARGUMENT', /stats\.mean\[0\] is NaN/);
  assertThrowsCode(make({ ...good, std: [...good.std.slice(0, 4), Infinity] }), 'ERR_VALR_ARGUMENT', /stats\.std\[4\] is Infinity/);
  assertThrowsCode(make({ ...good, std: [0, ...good.std.slice(1)] }), 'ERR_VALR_ARGUMENT', /stats\.std\[0\] is 0; each std must be finite and > 0/);
  assertThrowsCode(make({ ...good, std: [-1, ...good.std.slice(1)] }), 'ERR_VALR_ARGUMENT', /> 0/);
  assertThrowsCode(make({ ...good, mode: 'patch' }), 'ERR_VALR_ARGUMENT', /mode/);
  assertThrowsCode(make(null), 'ERR_VALR_ARGUMENT', /stats must be an object/);
  try {
    make({ ...good, dim: 4 })();
  } catch (e) {
    assert.ok(e instanceof ValrError);
  }
});

// ------------------------------------------------------------------------------------
const json = suite('teachers-standardize: JSON');

json('stats survive JSON.stringify/parse: identical features in both modes; older stats without mode read as channel', () => {
  const t = randomTeacher();
  for (const mode of ['channel', 'position'] as const) {
    const s = computeTeacherStats(t, IDS, { mode });
    const back = JSON.parse(JSON.stringify({ teachers: [s] })).teachers[0] as TeacherStats;
    assert.equal(back, s);
    assertBitsEqual(new StandardizedTeacher(t, back).batch(IDS), new StandardizedTeacher(t, s).batch(IDS), mode);
  }
  const s = computeTeacherStats(t, IDS), { mode: _, ...old } = s;
  assertBitsEqual(new StandardizedTeacher(t, old as TeacherStats).batch(IDS), new StandardizedTeacher(t, s).batch(IDS), 'no mode');
});

// ------------------------------------------------------------------------------------
// The point of the change: on the synthetic teachers a prediction with no image
// information scores a high cosine; after standardisation it does not. The dataset is
// small (seed 1: 14 training and 18 test images); the grid is the experiments' 8 x 8.
const base = suite('teachers-standardize: mean-feature baseline');
const ds = generateDataset({ train: 20, val: 0, test: 10, seed: 1 });
const imagesOf = (split: 'train' | 'test') => [...new Set(ds.splits[split].flatMap((s) => s.images))];
const TRAIN = imagesOf('train'), TEST = imagesOf('test');
const view = (id: string) => ds.views.get(id)!;
const fmt = (b: MeanFeatureBaseline) =>
  `per-position ${b.perPosition.toFixed(3)}, global ${b.global.toFixed(3)}, per-position direction ${b.perPositionDirection.toFixed(3)}`;

base('raw teachers: high; channel-standardised: global ~0, per-position much lower; position-standardised: all low', () => {
  for (const kind of ['geometry', 'appearance'] as const) {
    const t = makeTeacher({ kind, grid: [8, 8] }, { view });
    const channel = new StandardizedTeacher(t, computeTeacherStats(t, TRAIN));
    const position = new StandardizedTeacher(t, computeTeacherStats(t, TRAIN, { mode: 'position' }));
    const raw = meanFeatureBaseline(t, TRAIN, TEST), c = meanFeatureBaseline(channel, TRAIN, TEST), p = meanFeatureBaseline(position, TRAIN, TEST);
    console.log(`  ${kind} (${TRAIN.length} train / ${TEST.length} test images, grid 8x8)\n    raw:      ${fmt(raw)}\n    channel:  ${fmt(c)}\n    position: ${fmt(p)}`);
    // measured (seed 1): raw 0.74-0.77 per position; channel ~0.45-0.51; position ~0 / direction ~0.22
    assert.ok(raw.perPosition > 0.65 && raw.global > 0.5 && raw.perPositionDirection > 0.65, `${kind} raw baseline is high`);
    assert.ok(Math.abs(c.global) < 0.1, `${kind} channel: global mean ~0`);
    assert.ok(c.perPosition < raw.perPosition - 0.2 && c.perPosition < 0.6, `${kind} channel: per-position ${c.perPosition}`);
    assert.ok(Math.abs(p.perPosition) < 0.1 && Math.abs(p.global) < 0.1, `${kind} position: mean baselines ~0`);
    assert.ok(p.perPositionDirection < 0.3, `${kind} position: best constant per position ${p.perPositionDirection}`);
    // no eval feature explodes (a per-(position, channel) std would: ~2000 here)
    const worst = maxAbs(position.batch(TEST));
    assert.ok(worst < 50, `${kind} position: max |feature| on test images ${worst}`);
  }
});

base('cosineToTargets: the targets themselves score 1, their negation -1; [n, P, dim] or [P, dim]', () => {
  const t = makeTeacher({ kind: 'appearance', grid: [4, 4] }, { view });
  const ids = TEST.slice(0, 3), f = t.batch(ids);
  assert.ok(Math.abs(cosineToTargets(f, t, ids) - 1) < 1e-6);
  assert.ok(Math.abs(cosineToTargets(f.map((x) => -x), t, ids) + 1) < 1e-6);
  assert.ok(Math.abs(cosineToTargets(f.subarray(0, 16 * 64), t, ids.slice(0, 1)) - 1) < 1e-6);
  assertThrowsCode(() => cosineToTargets(new Float32Array(5), t, ids), 'ERR_VALR_SHAPE', /expected \[P, dim\] = 1024/);
});

stats.run();
bad.run();
json.run();
base.run();
