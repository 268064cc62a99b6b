// The alignment ops as differentiable ops on the tape: tap -> upsample -> REPA loss,
// checked against finite differences of the whole chain.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { autograd, kernels, Tensor } from '../lib/index';
import { assertClose, assertScalarClose, rng } from './helpers/check';

const test = suite('autograd alignment chain');

function chainLoss(hidden: Float32Array, B: number, T: number, D: number, rows: Int32Array, S: number, target: Float32Array) {
  const tapped = kernels.tapGather(hidden, [B, T, D], rows);
  const up = kernels.upsampleBilinear(tapped, [S, 2, 2, D], [3, 3]);
  return kernels.repaCosineLoss(up, target, [S, 9, D]).loss;
}

test('gradient of REPA(upsample(tap(hidden))) w.r.t. hidden matches finite differences', () => {
  const r = rng(5);
  const B = 2, T = 10, D = 6, S = 3, K = 4;
  const hidden = r.floats(B * T * D), target = r.floats(S * 9 * D);
  const rows = Int32Array.from({ length: S * K }, (_, i) => (i * 7 + 1) % (B * T));
  const h = new autograd.Variable(Tensor.fromArray(hidden, [B, T, D]), { requiresGrad: true });
  const tapped = autograd.tap(h, rows, [S, K, D]);
  const up = autograd.upsampleBilinear(tapped, [2, 2], [3, 3]);
  const loss = autograd.repaCosineLoss([up], [Tensor.fromArray(target, [S, 9, D])]);
  assertScalarClose((loss.value.toArray() as Float32Array)[0], chainLoss(hidden, B, T, D, rows, S, target), 1e-6, 1e-6, 'loss');
  autograd.backward(loss);
  const grad = h.grad!.toArray() as Float32Array;
  const eps = 1e-3;
  for (const i of [0, 7, 13, 42, 61, 100, 119]) {
    const xp = hidden.slice(), xm = hidden.slice();
    xp[i] += eps;
    xm[i] -= eps;
    const fd = (chainLoss(xp, B, T, D, rows, S, target) - chainLoss(xm, B, T, D, rows, S, target)) / (xp[i] - xm[i]);
    assertScalarClose(grad[i], fd, 1e-4, 2e-3, `d/dhidden[${i}]`);
  }
  // rows never tapped get no gradient
  const tappedRows = new Set(rows);
  for (let row = 0; row < B * T; row++) {
    if (!tappedRows.has(row)) assert.ok(grad.subarray(row * D, (row + 1) * D).every((v) => v === 0), `row ${row}`);
  }
});

test('fan-out and repeated backward accumulate into .grad; noGrad records nothing', () => {
  const r = rng(6);
  const S = 2, P = 4, D = 3;
  const x = new autograd.Variable(Tensor.fromArray(r.floats(S * P * D), [S, P, D]), { requiresGrad: true });
  const t1 = Tensor.fromArray(r.floats(S * P * D), [S, P, D]);
  const t2 = Tensor.fromArray(r.floats(S * P * D), [S, P, D]);
  const single = (t: Tensor) => kernels.repaCosineLoss(x.value.toArray() as Float32Array, t.toArray() as Float32Array, [S, P, D]).gradPred;
  // Two teachers reading the same prediction: gradients add (mean over 2 teachers).
  const loss = autograd.repaCosineLoss([x, x], [t1, t2]);
  autograd.backward(loss);
  const g1 = single(t1), g2 = single(t2);
  assertClose(x.grad!.toArray(), g1.map((v, i) => (v + g2[i]) / 2), 1e-7, 1e-6, 'fan-out');
  autograd.backward(autograd.repaCosineLoss([x], [t1]));
  assertClose(x.grad!.toArray(), g1.map((v, i) => (v + g2[i]) / 2 + v), 1e-7, 1e-6, 'accumulated across backward calls');
  const frozen = autograd.noGrad(() => autograd.repaCosineLoss([x], [t1]));
  assert.throws(() => autograd.backward(frozen), /does not depend on any parameter/);
});

test.run();
