// Transformer ops (CPU) against float64 references, finite differences through the
// tape, determinism, and argument errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { autograd, Tensor } from '../lib/index';
import * as mo from '../lib/ops/model';
import * as F from '../lib/autograd/model-ops';
import { runtime } from '../lib/index';
import { assertBitsEqual, assertClose, assertScalarClose, assertThrowsCode, maxAbs, rng } from './helpers/check';
import { attentionRef, crossEntropyRef, layerNormRef, matmulRef, rmsNormRef, ropeRef } from './helpers/model-reference';

const t = (data: Float32Array, shape: number[]) => Tensor.fromArray(data, shape);
const arr = (x: Tensor) => x.toArray() as Float32Array;

const ops = suite('model ops');

ops('matmul: all transposes, bias, alpha, accumulate into poison, batched', () => {
  const r = rng(101);
  for (const [M, N, K] of [[1, 1, 1], [3, 5, 7], [17, 33, 65], [64, 48, 130]]) {
    for (const ta of [false, true])
      for (const tb of [false, true]) {
        const a = r.floats(M * K), b = r.floats(K * N), bias = r.floats(N);
        const c = mo.matmul(t(a, ta ? [K, M] : [M, K]), t(b, tb ? [N, K] : [K, N]), { transA: ta, transB: tb, bias: t(bias, [N]) });
        assertClose(arr(c), matmulRef(a, b, M, N, K, ta, tb, bias), 1e-4, 1e-5, `${M}x${N}x${K} ${ta}${tb}`);
      }
    const a = r.floats(M * K), b = r.floats(K * N);
    const out = Tensor.full([M, N], NaN);
    mo.matmul(t(a, [M, K]), t(b, [K, N]), { out, alpha: 0.5 });
    assertClose(arr(out), matmulRef(a, b, M, N, K, false, false).map((v) => v * 0.5), 1e-4, 1e-5, 'poison + alpha');
    mo.matmul(t(a, [M, K]), t(b, [K, N]), { out, accumulate: true, alpha: 0.5 });
    assertClose(arr(out), matmulRef(a, b, M, N, K, false, false), 1e-4, 1e-5, 'accumulate');
  }
  const Bn = 3, M = 4, N = 5, K = 6;
  const a = r.floats(Bn * M * K), b = r.floats(Bn * K * N);
  const c = arr(mo.matmul(t(a, [Bn, M, K]), t(b, [Bn, K, N])));
  for (let i = 0; i < Bn; i++) {
    assertClose(c.subarray(i * M * N, (i + 1) * M * N), matmulRef(a.subarray(i * M * K), b.subarray(i * K * N), M, N, K, false, false), 1e-5, 1e-5, `batch ${i}`);
  }
  assertThrowsCode(() => mo.matmul(t(a.subarray(0, 12), [3, 4]), t(b.subarray(0, 10), [5, 2])), 'ERR_VALR_SHAPE', /inner dimensions differ/);
});

ops('attention: GQA, causal with a cache offset, padding masks, queries that see nothing', () => {
  const r = rng(102);
  const cases: [number, number, number, number, number, number, boolean, boolean][] = [
    [2, 6, 6, 4, 2, 8, true, false], [1, 1, 9, 4, 1, 16, true, false], [2, 3, 7, 2, 2, 8, true, true],
    [1, 5, 5, 3, 3, 4, false, true], [3, 4, 4, 8, 2, 16, true, true],
  ];
  for (const [B, Tq, Tk, Hq, Hkv, Dh, causal, masked] of cases) {
    const q = r.floats(B * Tq * Hq * Dh), k = r.floats(B * Tk * Hkv * Dh), v = r.floats(B * Tk * Hkv * Dh);
    const keyMask = masked ? Int32Array.from({ length: B * Tk }, (_, i) => (i % Tk < Tk - 1 || i < Tk ? 1 : 0)) : null;
    if (masked && B > 1) keyMask!.fill(0, Tk, Tk + Tk); // batch row 1 sees no key at all
    const { out, lse } = mo.attention(t(q, [B, Tq, Hq, Dh]), t(k, [B, Tk, Hkv, Dh]), t(v, [B, Tk, Hkv, Dh]), { causal, keyMask });
    assertClose(arr(out), attentionRef(q, k, v, B, Tq, Tk, Hq, Hkv, Dh, causal, keyMask), 1e-5, 1e-4, `B${B} Tq${Tq} Tk${Tk} Hq${Hq} Hkv${Hkv}`);
    assert.equal(lse.shape, [B, Hq, Tq]);
  }
});

ops('rmsNorm, layerNorm, rope, swiglu, gelu match float64 references', () => {
  const r = rng(103);
  const rows = 7, D = 24;
  const x = r.floats(rows * D), w = r.floats(D), b = r.floats(D);
  assertClose(arr(mo.rmsNorm(t(x, [rows, D]), t(w, [D]), 1e-6).y), rmsNormRef(x, w, rows, D, 1e-6), 1e-5, 1e-5, 'rmsNorm');
  assertClose(arr(mo.layerNorm(t(x, [rows, D]), t(w, [D]), t(b, [D]), 1e-5).y), layerNormRef(x, w, b, rows, D, 1e-5), 1e-5, 1e-5, 'layerNorm');
  const pos = Int32Array.from({ length: 6 }, (_, i) => i * 7);
  const xr = r.floats(6 * 2 * 8);
  const y = mo.rope(t(xr, [2, 3, 2, 8]), pos, 10000);
  assertClose(arr(y), ropeRef(xr, pos, 6, 2, 8, 10000), 1e-5, 1e-5, 'rope');
  assertClose(arr(mo.rope(y, pos, 10000, true)), xr, 1e-5, 1e-5, 'inverse rope undoes rope');
  const g = r.floats(50), u = r.floats(50);
  assertClose(arr(mo.swiglu(t(g, [50]), t(u, [50]))), Array.from(g, (v, i) => (v / (1 + Math.exp(-v))) * u[i]), 1e-6, 1e-5, 'swiglu');
  const erf = (z: number) => { // Abramowitz-Stegun 7.1.26 is too coarse; integrate instead
    let s = 0; const n = 2000;
    for (let i = 0; i < n; i++) { const tt = (z * (i + 0.5)) / n; s += Math.exp(-tt * tt); }
    return (2 / Math.sqrt(Math.PI)) * s * (z / n);
  };
  assertClose(arr(mo.gelu(t(g, [50]))), Array.from(g, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))), 1e-5, 1e-4, 'gelu');
});

ops('cross-entropy: loss and gradient in one pass, ignored targets, bad targets', () => {
  const r = rng(104);
  const N = 9, V = 13;
  const logits = r.floats(N * V, 3);
  const targets = Int32Array.from({ length: N }, (_, i) => (i % 4 === 3 ? -100 : (i * 5) % V));
  const ref = crossEntropyRef(logits, targets, N, V);
  const res = mo.crossEntropy(t(logits, [N, V]), targets, { withGrad: true });
  assertScalarClose(res.loss, ref.loss, 1e-9, 1e-9, 'loss');
  assert.is(res.count, ref.count);
  assertClose(arr(res.dlogits!), ref.grad, 1e-7, 1e-5, 'dlogits');
  assertThrowsCode(() => mo.crossEntropy(t(logits, [N, V]), Int32Array.from({ length: N }, () => V)), 'ERR_VALR_RANGE', /outside \[0, 13\)/);
});

ops('AdamW matches the torch.optim.AdamW update written out', () => {
  const r = rng(105);
  const n = 40;
  const p0 = r.floats(n), g = r.floats(n);
  const p = t(p0, [n]), m = Tensor.zeros([n]), v = Tensor.zeros([n]), gt = t(g, [n]);
  const lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
  const { native } = require('../lib/native') as typeof import('../lib/native');
  const ref = Float64Array.from(p0), mr = new Float64Array(n), vr = new Float64Array(n);
  for (let step = 1; step <= 3; step++) {
    native().adamw(p.native, gt.native, m.native, v.native, lr, b1, b2, eps, wd, step);
    for (let i = 0; i < n; i++) {
      ref[i] *= 1 - lr * wd;
      mr[i] = b1 * mr[i] + (1 - b1) * g[i];
      vr[i] = b2 * vr[i] + (1 - b2) * g[i] ** 2;
      ref[i] -= (lr / (1 - b1 ** step)) * mr[i] / (Math.sqrt(vr[i]) / Math.sqrt(1 - b2 ** step) + eps);
    }
  }
  assertClose(arr(p), ref, 1e-6, 1e-5, 'params after 3 steps');
});

ops('sequence copies, row splicing and their errors', () => {
  const r = rng(106);
  const a = r.floats(2 * 3 * 4), b = r.floats(2 * 2 * 4);
  const dst = Tensor.full([2, 5, 4], NaN);
  mo.copyBlock(t(a, [2, 3, 4]), 0, dst, 0, 3);
  mo.copyBlock(t(b, [2, 2, 4]), 0, dst, 3, 2);
  const d = arr(dst);
  for (let bi = 0; bi < 2; bi++) {
    assertBitsEqual(d.subarray(bi * 20, bi * 20 + 12), a.subarray(bi * 12, bi * 12 + 12), 'first part');
    assertBitsEqual(d.subarray(bi * 20 + 12, bi * 20 + 20), b.subarray(bi * 8, bi * 8 + 8), 'second part');
  }
  assertThrowsCode(() => mo.copyBlock(t(a, [2, 3, 4]), 0, dst, 4, 3), 'ERR_VALR_RANGE');
  const base = Tensor.zeros([5, 3]);
  mo.scatterRows(t(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]), Int32Array.of(4, 1), base);
  assert.equal(Array.from(arr(base)), [0, 0, 0, 4, 5, 6, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
  assertThrowsCode(() => mo.scatterRows(t(new Float32Array(6), [2, 3]), Int32Array.of(1, 1), base), 'ERR_VALR_ARGUMENT', /twice/);
});

ops.run();

const grads = suite('gradients by finite differences');

// Checks d(sum(f(inputs) * R))/d(input) of the tape against central differences.
function fdCheck(name: string, shapes: number[][], f: (vs: autograd.Variable[]) => autograd.Variable, seed: number, h = 1e-2, tol = 2e-3) {
  const r = rng(seed);
  const data = shapes.map((s) => r.floats(s.reduce((a, b) => a * b, 1)));
  const vars = data.map((d, i) => new autograd.Variable(Tensor.fromArray(d, shapes[i]), { requiresGrad: true }));
  const out = f(vars);
  const R = r.floats(out.value.size);
  const objective = (ds: Float32Array[]) =>
    autograd.noGrad(() => {
      const y = f(ds.map((d, i) => new autograd.Variable(Tensor.fromArray(d, shapes[i])))).value.toArray();
      let s = 0;
      for (let i = 0; i < y.length; i++) s += y[i] * R[i];
      return s;
    });
  autograd.backward(out, Tensor.fromArray(R, out.value.shape));
  vars.forEach((v, vi) => {
    const g = arr(v.grad!);
    const scale = Math.max(1e-3, maxAbs(g));
    for (const i of [0, Math.floor(data[vi].length / 3), data[vi].length - 1]) {
      const dp = data.map((d) => d.slice()), dm = data.map((d) => d.slice());
      dp[vi][i] += h;
      dm[vi][i] -= h;
      const fd = (objective(dp) - objective(dm)) / (dp[vi][i] - dm[vi][i]);
      assertScalarClose(g[i], fd, tol * scale, tol * 5, `${name}: d/dinput${vi}[${i}]`);
    }
  });
}

grads('linear with bias', () => fdCheck('linear', [[2, 3, 5], [4, 5], [4]], ([x, w, b]) => F.linear(x, w, b), 1));
grads('rmsNorm', () => fdCheck('rmsNorm', [[3, 6], [6]], ([x, w]) => F.rmsNorm(x, w, 1e-6), 2));
grads('layerNorm', () => fdCheck('layerNorm', [[3, 6], [6], [6]], ([x, w, b]) => F.layerNorm(x, w, b, 1e-5), 3));
grads('rope', () => fdCheck('rope', [[1, 3, 2, 4]], ([x]) => F.rope(x, Int32Array.of(0, 5, 9), 100), 4));
grads('swiglu and gelu', () => fdCheck('swiglu', [[10], [10]], ([g, u]) => F.gelu(F.swiglu(g, u)), 5));
grads('attention (GQA, cache offset, mask)', () =>
  fdCheck('attention', [[2, 2, 4, 4], [2, 5, 2, 4], [2, 5, 2, 4]],
    ([q, k, v]) => F.attention(q, k, v, { causal: true, keyMask: Int32Array.of(1, 1, 1, 1, 1, 1, 0, 1, 1, 1) }), 6));
grads('concat, slice, splice, add', () =>
  fdCheck('shapes', [[2, 3, 4], [2, 2, 4], [3, 4]], ([a, b, c]) => {
    const cat = F.concatSeq([a, b]); // [2, 5, 4]
    const flat = F.reshape(cat, [10, 4]);
    const spliced = F.spliceRows(flat, c, Int32Array.of(7, 0, 3));
    return F.add(F.sliceSeq(F.reshape(spliced, [2, 5, 4]), 1, 3), F.sliceSeq(cat, 0, 3), 1, 0.5);
  }, 7));
grads('cross-entropy through a linear layer', () =>
  fdCheck('ce', [[4, 6], [5, 6]], ([x, w]) => F.crossEntropy(F.linear(x, w), Int32Array.of(1, -100, 4, 0)), 8));

grads('results do not depend on the thread count', () => {
  const r = rng(9);
  const x = r.floats(64 * 96), w = r.floats(96), dy = r.floats(64 * 96);
  const run = () => {
    const n = mo.rmsNorm(t(x, [64, 96]), t(w, [96]), 1e-6);
    const dw = Tensor.zeros([96]);
    const dx = mo.rmsNormBackward(t(dy, [64, 96]), t(x, [64, 96]), t(w, [96]), n.rstd, dw);
    return [arr(n.y), arr(dx), arr(dw)];
  };
  const before = runtime.numThreads();
  const a = run();
  runtime.setNumThreads(1);
  const b = run();
  runtime.setNumThreads(before);
  a.forEach((v, i) => assertBitsEqual(v, b[i], `output ${i}`));
});

grads.run();
