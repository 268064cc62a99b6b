// Alignment kernels (CPU) against the float64 reference, on random shapes from the
// paper's ranges, with gradient checks, poisoned outputs and determinism checks.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { kernels, ops, runtime, Tensor } from '../lib/index';
import { assertBitsEqual, assertClose, assertScalarClose, assertThrowsCode, maxAbs, rng } from './helpers/check';
import { repaRef, tapGatherRef, tapScatterRef, upsampleBackwardRef, upsampleRef } from './helpers/reference';

const KS = [1, 4, 9, 16, 25];
const PS = [1, 196, 256, 576, 729];
const DS = [1, 3, 64, 1024, 1152];
const MAX_ELEMENTS = 1 << 21; // keeps the float64 reference quick

function grid(n: number): [number, number] {
  const r = Math.round(Math.sqrt(n));
  return [r, r];
}

// Random (S, K, P, D) with S in 1..64, shrunk so S*P*D stays testable.
function randomCases(seed: number, count: number) {
  const r = rng(seed);
  const cases: { S: number; K: number; P: number; D: number }[] = [];
  for (let i = 0; i < count; i++) {
    const K = r.pick(KS), P = r.pick(PS), D = r.pick(DS);
    const S = Math.max(1, Math.min(r.int(1, 64), Math.floor(MAX_ELEMENTS / (P * D))));
    cases.push({ S, K, P, D });
  }
  return cases;
}

const upsample = suite('upsampleBilinear');

upsample('forward and backward match the float64 reference on random paper-range shapes', () => {
  const r = rng(11);
  for (const { S, K, P, D } of randomCases(1, 14)) {
    const [gh, gw] = grid(K), [Gh, Gw] = grid(P);
    const x = r.floats(S * K * D), dy = r.floats(S * P * D);
    const what = `S=${S} K=${K} P=${P} D=${D}`;
    assertClose(kernels.upsampleBilinear(x, [S, gh, gw, D], [Gh, Gw]), upsampleRef(x, S, gh, gw, D, Gh, Gw), 1e-5, 1e-5, `fwd ${what}`);
    const dx = kernels.upsampleBilinearBackward(dy, [S, gh, gw, D], [Gh, Gw]);
    assertClose(dx, upsampleBackwardRef(dy, S, gh, gw, D, Gh, Gw), 1e-4, 1e-5, `bwd ${what}`);
  }
});

upsample('non-square grids, downsampling and identity', () => {
  const r = rng(12);
  const shapes = [
    [2, 3, 5, 7], [3, 2, 7, 5], [5, 5, 3, 3], [4, 4, 4, 4], [1, 7, 13, 2], [6, 1, 1, 6],
  ];
  for (const [gh, gw, Gh, Gw] of shapes) {
    const S = 3, D = 5;
    const x = r.floats(S * gh * gw * D), dy = r.floats(S * Gh * Gw * D);
    assertClose(kernels.upsampleBilinear(x, [S, gh, gw, D], [Gh, Gw]), upsampleRef(x, S, gh, gw, D, Gh, Gw), 1e-5, 1e-5, `${gh}x${gw}->${Gh}x${Gw}`);
    assertClose(kernels.upsampleBilinearBackward(dy, [S, gh, gw, D], [Gh, Gw]), upsampleBackwardRef(dy, S, gh, gw, D, Gh, Gw), 1e-5, 1e-5, `bwd ${gh}x${gw}->${Gh}x${Gw}`);
  }
  const x = rng(3).floats(2 * 16 * 4);
  assertBitsEqual(kernels.upsampleBilinear(x, [2, 4, 4, 4], [4, 4]), x, 'same size is the identity');
});

upsample('backward is the adjoint of forward, checked by finite differences', () => {
  const r = rng(13);
  const S = 2, gh = 3, gw = 3, D = 4, Gh = 7, Gw = 5;
  const x = r.floats(S * gh * gw * D), dy = r.floats(S * Gh * Gw * D);
  const f = (xs: Float32Array) => kernels.upsampleBilinear(xs, [S, gh, gw, D], [Gh, Gw]).reduce((acc, v, i) => acc + v * dy[i], 0);
  const dx = kernels.upsampleBilinearBackward(dy, [S, gh, gw, D], [Gh, Gw]);
  const h = 1e-2;
  for (const i of [0, 5, 17, 40, 71]) {
    const xp = x.slice(), xm = x.slice();
    xp[i] += h;
    xm[i] -= h;
    const fd = (f(xp) - f(xm)) / (Math.fround(x[i] + h) - Math.fround(x[i] - h));
    assertScalarClose(dx[i], fd, 1e-3, 1e-3, `d/dx[${i}]`);
  }
});

upsample('backward is bit-identical across runs and thread counts', () => {
  const r = rng(14);
  const S = 17, gh = 4, gw = 4, D = 96, Gh = 16, Gw = 16;
  const dy = r.floats(S * Gh * Gw * D);
  const before = runtime.numThreads();
  const a = kernels.upsampleBilinearBackward(dy, [S, gh, gw, D], [Gh, Gw]);
  const b = kernels.upsampleBilinearBackward(dy, [S, gh, gw, D], [Gh, Gw]);
  runtime.setNumThreads(1);
  const c = kernels.upsampleBilinearBackward(dy, [S, gh, gw, D], [Gh, Gw]);
  runtime.setNumThreads(3);
  const d = kernels.upsampleBilinearBackward(dy, [S, gh, gw, D], [Gh, Gw]);
  runtime.setNumThreads(before);
  assertBitsEqual(a, b, 'run to run');
  assertBitsEqual(a, c, '1 thread');
  assertBitsEqual(a, d, '3 threads');
});

upsample('tensor op writes every element of a poisoned output, and accumulates', () => {
  const r = rng(15);
  const S = 5, gh = 3, gw = 3, D = 7, Gh = 14, Gw = 14;
  const x = Tensor.fromArray(r.floats(S * 9 * D), [S, 9, D]);
  const out = Tensor.full([S, Gh * Gw, D], NaN);
  ops.upsampleBilinear(x, [gh, gw], [Gh, Gw], out);
  assertClose(out.toArray(), upsampleRef(x.toArray(), S, gh, gw, D, Gh, Gw), 1e-5, 1e-5, 'poisoned fwd');
  const dxOut = Tensor.full([S, 9, D], NaN);
  ops.upsampleBilinearBackward(out, [gh, gw], [Gh, Gw], { out: dxOut });
  const ref = upsampleBackwardRef(out.toArray(), S, gh, gw, D, Gh, Gw);
  assertClose(dxOut.toArray(), ref, 1e-4, 1e-5, 'poisoned bwd');
  const acc = Tensor.full([S, 9, D], 2);
  ops.upsampleBilinearBackward(out, [gh, gw], [Gh, Gw], { out: acc, accumulate: true });
  assertClose(acc.toArray(), ref.map((v) => v + 2), 1e-4, 1e-5, 'accumulate');
  for (const t of [x, out, dxOut, acc]) t.dispose();
});

upsample('a K that is not gh*gw, wrong lengths and bad grids are clear errors', () => {
  const x = Tensor.zeros([2, 10, 4]);
  assertThrowsCode(() => ops.upsampleBilinear(x, [3, 3], [4, 4]), 'ERR_VALR_SHAPE', /10 tokens per segment, which is not 3x3 = 9/);
  assertThrowsCode(() => kernels.upsampleBilinear(new Float32Array(5), [1, 2, 2, 1], [4, 4]), 'ERR_VALR_SHAPE', /'x' must have 4 elements/);
  assertThrowsCode(() => kernels.upsampleBilinear(new Float32Array(4), [1, 2, 2, 1], [0, 4]), 'ERR_VALR_SHAPE', /outGrid/);
  assertThrowsCode(() => kernels.upsampleBilinearBackward(new Float32Array(4), [1, 2, 2, 1], [4, 4]), 'ERR_VALR_SHAPE', /'dy' must have 16/);
  x.dispose();
});

upsample('typed-array outputs can be caller-owned and reused; overlap is refused', () => {
  const r = rng(16);
  const x = r.floats(2 * 4 * 3), y = new Float32Array(2 * 25 * 3).fill(NaN);
  const got = kernels.upsampleBilinear(x, [2, 2, 2, 3], [5, 5], y);
  assert.is(got, y, 'writes into the given array');
  assertClose(y, upsampleRef(x, 2, 2, 2, 3, 5, 5), 1e-6, 1e-6, 'poisoned out');
  const dx = new Float32Array(2 * 4 * 3).fill(NaN);
  kernels.upsampleBilinearBackward(y, [2, 2, 2, 3], [5, 5], dx);
  assertClose(dx, upsampleBackwardRef(y, 2, 2, 2, 3, 5, 5), 1e-5, 1e-6, 'poisoned dx');
  const shared = new Float32Array(100);
  assertThrowsCode(
    () => kernels.upsampleBilinear(shared.subarray(0, 12), [1, 2, 2, 3], [2, 2], shared.subarray(6, 18)),
    'ERR_VALR_ARGUMENT', /overlaps an input/);
  assertThrowsCode(() => kernels.upsampleBilinear(x, [2, 2, 2, 3], [5, 5], new Float32Array(3)), 'ERR_VALR_SHAPE', /'out' must have 150/);
  const pred = r.floats(24), target = r.floats(24), g = new Float32Array(24).fill(NaN);
  const res = kernels.repaCosineLoss(pred, target, [2, 3, 4], null, g);
  assert.is(res.gradPred, g);
  assertClose(g, repaRef([{ pred, target, P: 3, D: 4 }], 2, null).grads[0], 1e-7, 1e-5, 'grad into out');
});

upsample.run();

const tap = suite('tap');

tap('gather and scatter match the reference, duplicates included', () => {
  const r = rng(21);
  for (const [B, T, D, count] of [[2, 50, 64, 16], [1, 7, 3, 25], [4, 33, 1152, 64], [3, 5, 1, 15]]) {
    const hidden = r.floats(B * T * D);
    const rows = Int32Array.from({ length: count }, () => r.int(0, B * T - 1));
    rows[count - 1] = rows[0]; // a duplicate row: its gradients add up
    assertBitsEqual(kernels.tapGather(hidden, [B, T, D], rows), new Float32Array(tapGatherRef(hidden, D, rows)), 'gather');
    const S = 1, K = count;
    const grad = r.floats(count * D);
    assertClose(kernels.tapScatter(grad, [S, K, D], rows, [B, T, D]), tapScatterRef(grad, D, rows, B * T), 1e-6, 1e-6, 'scatter');
  }
});

tap('scatter is the adjoint of gather: <gather(h), g> = <h, scatter(g)>', () => {
  const r = rng(22);
  const B = 3, T = 40, D = 24, S = 4, K = 9;
  const hidden = r.floats(B * T * D), g = r.floats(S * K * D);
  const rows = Int32Array.from({ length: S * K }, () => r.int(0, B * T - 1));
  const a = kernels.tapGather(hidden, [B, T, D], rows).reduce((acc, v, i) => acc + v * g[i], 0);
  const b = kernels.tapScatter(g, [S, K, D], rows, [B, T, D]).reduce((acc, v, i) => acc + v * hidden[i], 0);
  assertScalarClose(a, b, 1e-3, 1e-5, 'adjoint');
});

tap('tensor ops write every element of poisoned outputs and accumulate', () => {
  const r = rng(23);
  const B = 2, T = 30, D = 16;
  const rows = Int32Array.from({ length: 12 }, (_, i) => (i * 5) % (B * T));
  const hidden = Tensor.fromArray(r.floats(B * T * D), [B, T, D]);
  const out = Tensor.full([12, D], NaN);
  ops.tapGather(hidden, rows, out);
  assertBitsEqual(out.toArray() as Float32Array, new Float32Array(tapGatherRef(hidden.toArray(), D, rows)), 'gather into poison');
  const back = Tensor.full([B, T, D], NaN);
  ops.tapScatter(out, rows, [B, T, D], { out: back });
  assertClose(back.toArray(), tapScatterRef(out.toArray(), D, rows, B * T), 0, 0, 'scatter into poison');
  const acc = Tensor.full([B, T, D], 1);
  ops.tapScatter(out, rows, [B, T, D], { out: acc, accumulate: true });
  assertClose(acc.toArray(), tapScatterRef(out.toArray(), D, rows, B * T).map((v) => v + 1), 1e-6, 1e-6, 'accumulate');
  for (const t of [hidden, out, back, acc]) t.dispose();
});

tap('out-of-range rows and mismatched shapes are clear errors', () => {
  const h = new Float32Array(2 * 3 * 4);
  assertThrowsCode(() => kernels.tapGather(h, [2, 3, 4], Int32Array.of(0, 6)), 'ERR_VALR_RANGE', /rows'\[1\] = 6 is outside \[0, 6\)/);
  assertThrowsCode(() => kernels.tapGather(h, [2, 3, 4], Int32Array.of(-1)), 'ERR_VALR_RANGE');
  assertThrowsCode(() => kernels.tapGather(h, [2, 3, 5], Int32Array.of(0)), 'ERR_VALR_SHAPE', /'hidden' must have 30 elements/);
  assertThrowsCode(() => kernels.tapGather(h, [2, 3, 4], new Float32Array(2) as never), 'ERR_VALR_DTYPE', /Int32Array/);
  assertThrowsCode(() => kernels.tapScatter(new Float32Array(8), [1, 2, 4], Int32Array.of(0), [2, 3, 4]), 'ERR_VALR_SHAPE', /S\*K = 2/);
  assertThrowsCode(() => kernels.tapScatter(new Float32Array(8), [1, 2, 4], Int32Array.of(0, 1), [2, 3, 5]), 'ERR_VALR_SHAPE', /end in D = 4/);
});

tap.run();

const repa = suite('repaCosineLoss');

repa('loss and gradient match the float64 reference on random paper-range shapes', () => {
  const r = rng(31);
  for (const { S, P, D } of randomCases(2, 12)) {
    const pred = r.floats(S * P * D), target = r.floats(S * P * D);
    const weights = r.next() < 0.5 ? Float32Array.from({ length: S }, (_, s) => (s % 3 === 1 ? 0 : r.next() + 0.1)) : null;
    if (weights && weights.every((w) => w === 0)) weights[0] = 1;
    const got = kernels.repaCosineLoss(pred, target, [S, P, D], weights);
    const ref = repaRef([{ pred, target, P, D }], S, weights);
    const what = `S=${S} P=${P} D=${D} weights=${!!weights}`;
    assertScalarClose(got.loss, ref.total, 1e-9, 1e-9, `loss ${what}`);
    const scale = Math.max(1e-7, maxAbs(ref.grads[0]));
    assertClose(got.gradPred, ref.grads[0], scale * 1e-5, 1e-5, `grad ${what}`);
  }
});

repa('several teachers of different P and D in one call; gradScale', () => {
  const r = rng(32);
  const S = 6;
  const shapes = [[196, 64], [256, 3], [1, 1152], [729, 1]];
  const teachers = shapes.map(([P, D]) => ({ pred: r.floats(S * P * D), target: r.floats(S * P * D), shape: [S, P, D] }));
  const weights = Float32Array.of(1, 0, 2, 0.5, 0, 1);
  const got = kernels.repaCosineLossMulti(teachers, weights, { gradScale: 0.5 });
  const ref = repaRef(teachers.map((t) => ({ pred: t.pred, target: t.target, P: t.shape[1], D: t.shape[2] })), S, weights, 0.5);
  assertScalarClose(got.loss, ref.total, 1e-9, 1e-9, 'total');
  got.perTeacher.forEach((l, m) => assertScalarClose(l, ref.perTeacher[m], 1e-9, 1e-9, `teacher ${m}`));
  got.gradPred.forEach((g, m) => {
    const scale = Math.max(1e-7, maxAbs(ref.grads[m]));
    assertClose(g, ref.grads[m], scale * 1e-5, 1e-5, `grad ${m}`);
    // rows of zero-weight segments get exactly zero gradient
    const [, P, D] = teachers[m].shape;
    for (const s of [1, 4]) assert.ok(g.subarray(s * P * D, (s + 1) * P * D).every((v) => v === 0), `teacher ${m} segment ${s} zero`);
  });
});

repa('finite differences agree with the gradient', () => {
  const r = rng(33);
  const S = 2, P = 3, D = 5;
  const pred = r.floats(S * P * D), target = r.floats(S * P * D);
  const weights = Float32Array.of(0.7, 1.3);
  const g = kernels.repaCosineLoss(pred, target, [S, P, D], weights).gradPred;
  const h = 1e-3;
  for (let i = 0; i < pred.length; i += 3) {
    const xp = pred.slice(), xm = pred.slice();
    xp[i] += h;
    xm[i] -= h;
    const fd = (kernels.repaCosineLoss(xp, target, [S, P, D], weights).loss - kernels.repaCosineLoss(xm, target, [S, P, D], weights).loss) /
      (xp[i] - xm[i]);
    assertScalarClose(g[i], fd, 2e-4, 2e-3, `d/dpred[${i}]`);
  }
});

repa('zero vectors, tiny norms and huge values stay finite and match PyTorch semantics', () => {
  const r = rng(34);
  const S = 1, P = 5, D = 8;
  const pred = r.floats(S * P * D), target = r.floats(S * P * D);
  pred.fill(0, 0, D); // zero pred row
  target.fill(0, D, 2 * D); // zero target row
  for (let d = 0; d < D; d++) pred[2 * D + d] *= 1e-10; // below eps
  for (let d = 0; d < D; d++) pred[3 * D + d] *= 1e30; // x.x overflows float32
  for (let d = 0; d < D; d++) target[4 * D + d] = 3e38 * (d % 2 ? 1 : -1); // near FLT_MAX
  const got = kernels.repaCosineLoss(pred, target, [S, P, D]);
  const ref = repaRef([{ pred, target, P, D }], S, null);
  assert.ok(Number.isFinite(got.loss), 'finite loss');
  assert.ok(got.gradPred.every(Number.isFinite), 'finite gradient');
  assertScalarClose(got.loss, ref.total, 1e-9, 1e-9, 'loss');
  assertClose(got.gradPred, ref.grads[0], 1e-6, 1e-5, 'grad');
});

repa('weights: all zero gives 0 with zero gradients; NaN or negative weights are errors', () => {
  const pred = rng(35).floats(2 * 3 * 4), target = rng(36).floats(2 * 3 * 4);
  const z = kernels.repaCosineLoss(pred, target, [2, 3, 4], new Float32Array(2));
  assert.is(z.loss, 0);
  assert.ok(z.gradPred.every((v) => v === 0));
  assertThrowsCode(() => kernels.repaCosineLoss(pred, target, [2, 3, 4], Float32Array.of(1, NaN)), 'ERR_VALR_ARGUMENT', /weights'\[1\] must be finite/);
  assertThrowsCode(() => kernels.repaCosineLoss(pred, target, [2, 3, 4], Float32Array.of(1, -1)), 'ERR_VALR_ARGUMENT', />= 0/);
  assertThrowsCode(() => kernels.repaCosineLoss(pred, target, [2, 3, 4], Float32Array.of(1)), 'ERR_VALR_SHAPE', /S = 2/);
  assertThrowsCode(() => kernels.repaCosineLoss(pred, target.subarray(1), [2, 3, 4]), 'ERR_VALR_SHAPE', /target' must have 24/);
  assertThrowsCode(() => kernels.repaCosineLossMulti([]), 'ERR_VALR_ARGUMENT', /1 to 16 teachers/);
  assertThrowsCode(
    () => kernels.repaCosineLossMulti([{ pred, target, shape: [2, 3, 4] }, { pred, target, shape: [3, 2, 4] }]),
    'ERR_VALR_SHAPE',
    /S = 3 but teachers\[0\] has S = 2/,
  );
});

repa('tensor op matches the typed-array API and is deterministic', () => {
  const r = rng(37);
  const S = 9, P = 256, D = 64;
  const p = r.floats(S * P * D), t = r.floats(S * P * D);
  const a = kernels.repaCosineLoss(p, t, [S, P, D]);
  const pt = Tensor.fromArray(p, [S, P, D]), tt = Tensor.fromArray(t, [S, P, D]);
  const b = ops.repaCosineLoss([{ pred: pt, target: tt }]);
  assert.is(b.loss, a.loss);
  assertBitsEqual(b.gradPred[0].toArray() as Float32Array, a.gradPred, 'grad');
  const c = ops.repaCosineLoss([{ pred: pt, target: tt }]);
  assertBitsEqual(c.gradPred[0].toArray() as Float32Array, a.gradPred, 'rerun');
  const mismatch = Tensor.zeros([S, P, D + 1]);
  assertThrowsCode(() => ops.repaCosineLoss([{ pred: pt, target: mismatch }]), 'ERR_VALR_SHAPE', /target' must have shape/);
  for (const x of [pt, tt, mismatch, ...b.gradPred, ...c.gradPred]) x.dispose();
});

repa.run();
