// CUDA against the CPU reference path, op by op. Runs only where a CUDA device
// works (`npm run test:gpu` on a GPU machine); elsewhere it registers nothing and
// says so, so a CPU-only run does not pretend to have checked the GPU.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ops, runtime, Tensor } from '../lib/index';
import { assertBitsEqual, assertClose, assertScalarClose, maxAbs, rng } from './helpers/check';

const hasCuda = runtime.defaultDevice() === 'cuda';
if (!hasCuda) {
  console.log(`gpu.test.ts: no usable CUDA device (${runtime.loadReport().cuda.message}); CUDA comparisons not run`);
  if (process.env.VALR_TEST_GPU) throw new Error('VALR_TEST_GPU is set but CUDA is unavailable');
} else {
  const test = suite('CUDA vs CPU');
  const r = rng(77);
  const both = (data: Float32Array, shape: number[]) => [Tensor.fromArray(data, shape), Tensor.fromArray(data, shape, { device: 'cuda' })];

  test('upsample forward/backward at paper sizes and odd shapes; backward deterministic', () => {
    for (const [S, gh, gw, Gh, Gw, D] of [[64, 4, 4, 16, 16, 1024], [3, 5, 5, 27, 27, 3], [7, 3, 3, 24, 24, 1], [2, 2, 3, 5, 7, 1152], [1, 1, 1, 1, 1, 1]]) {
      const [xc, xg] = both(r.floats(S * gh * gw * D), [S, gh * gw, D]);
      const yc = ops.upsampleBilinear(xc, [gh, gw], [Gh, Gw]);
      const yg = Tensor.full([S, Gh * Gw, D], NaN, { device: 'cuda' });
      ops.upsampleBilinear(xg, [gh, gw], [Gh, Gw], yg);
      assertClose(yg.toArray(), yc.toArray(), 1e-6, 1e-5, `fwd ${S},${gh}x${gw}->${Gh}x${Gw},${D}`);
      const [dyc, dyg] = both(r.floats(S * Gh * Gw * D), [S, Gh * Gw, D]);
      const dxc = ops.upsampleBilinearBackward(dyc, [gh, gw], [Gh, Gw]);
      const dxg = ops.upsampleBilinearBackward(dyg, [gh, gw], [Gh, Gw]);
      const dxg2 = ops.upsampleBilinearBackward(dyg, [gh, gw], [Gh, Gw]);
      assertClose(dxg.toArray(), dxc.toArray(), 1e-4, 1e-5, 'bwd');
      assertBitsEqual(dxg.toArray() as Float32Array, dxg2.toArray() as Float32Array, 'GPU backward run to run');
      for (const t of [xc, xg, yc, yg, dyc, dyg, dxc, dxg, dxg2]) t.dispose();
    }
  });

  test('tap gather/scatter with duplicates and accumulate', () => {
    const B = 8, T = 512, D = 1024, count = 64 * 16;
    const rows = Int32Array.from({ length: count }, () => r.int(0, B * T - 1));
    const [hc, hg] = both(r.floats(B * T * D), [B, T, D]);
    assertBitsEqual(ops.tapGather(hg, rows).toArray() as Float32Array, ops.tapGather(hc, rows).toArray() as Float32Array, 'gather');
    const [gc, gg] = both(r.floats(count * D), [count, D]);
    const sc = ops.tapScatter(gc, rows, [B, T, D]);
    const sg = ops.tapScatter(gg, rows, [B, T, D]);
    assertClose(sg.toArray(), sc.toArray(), 1e-6, 1e-6, 'scatter');
    ops.tapScatter(gg, rows, [B, T, D], { out: sg, accumulate: true });
    assertClose(sg.toArray(), (sc.toArray() as Float32Array).map((v) => 2 * v), 1e-5, 1e-6, 'accumulate');
  });

  test('REPA loss: several teachers, weights with zeros, zero and huge rows', () => {
    const S = 64;
    const shapes = [[256, 1024], [196, 768], [729, 1152], [1, 3]];
    const weights = Float32Array.from({ length: S }, (_, s) => (s % 5 === 0 ? 0 : 1));
    const teachers = shapes.map(([P, D]) => {
      const p = r.floats(S * P * D), t = r.floats(S * P * D);
      p.fill(0, 0, D);
      for (let d = 0; d < D; d++) p[D + d] *= 1e30;
      return { cpu: both(p, [S, P, D])[0], gpu: Tensor.fromArray(p, [S, P, D], { device: 'cuda' }), tc: Tensor.fromArray(t, [S, P, D]), tg: Tensor.fromArray(t, [S, P, D], { device: 'cuda' }) };
    });
    const c = ops.repaCosineLoss(teachers.map((x) => ({ pred: x.cpu, target: x.tc })), { weights, gradScale: 0.5 });
    const g = ops.repaCosineLoss(teachers.map((x) => ({ pred: x.gpu, target: x.tg })), { weights, gradScale: 0.5 });
    assertScalarClose(g.loss, c.loss, 1e-12, 1e-9, 'loss');
    g.gradPred.forEach((gg, m) => {
      const ref = c.gradPred[m].toArray();
      assertClose(gg.toArray(), ref, maxAbs(ref) * 1e-6, 1e-5, `grad ${m}`);
    });
    const g2 = ops.repaCosineLoss(teachers.map((x) => ({ pred: x.gpu, target: x.tg })), { weights, gradScale: 0.5 });
    assert.is(g2.loss, g.loss, 'deterministic loss');
  });

  test('caching allocator reuses blocks and reports peak', () => {
    const before = runtime.cudaMemoryStats();
    const a = Tensor.empty([1 << 20], { device: 'cuda' });
    a.dispose();
    const b = Tensor.empty([1 << 20], { device: 'cuda' });
    const after = runtime.cudaMemoryStats();
    assert.ok(after.cacheHits > before.cacheHits, 'second allocation came from the cache');
    assert.ok(after.peakInUse >= 4 << 20);
    b.dispose();
  });

  test('foreign device pointers are wrapped without a copy', () => {
    const owner = Tensor.fromArray(Float32Array.of(1, 2, 3, 4), [4], { device: 'cuda' });
    const view = Tensor.fromDevicePointer(owner.devicePointer(), [2, 2], { device: 'cuda', owner });
    assert.equal(Array.from(view.toArray()), [1, 2, 3, 4]);
    assert.is(typeof owner.stream(), 'bigint');
    view.dispose();
    assert.not.ok(owner.isDisposed);
    owner.dispose();
  });

  test.run();
}
