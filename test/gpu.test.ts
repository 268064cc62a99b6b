// CUDA against the CPU reference path, op by op. Runs only where a CUDA device
// works (`npm run test:gpu` on a GPU machine); elsewhere it registers nothing and
// says so, so a CPU-only run does not pretend to have checked the GPU.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ops, runtime, Tensor } from '../lib/index';
import * as mo from '../lib/ops/model';
import { native } from '../lib/native';
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

  const cpuGpu = (data: Float32Array, shape: number[]) => [Tensor.fromArray(data, shape), Tensor.fromArray(data, shape, { device: 'cuda' })];
  const same = (g: Tensor, c: Tensor, what: string, atol = 1e-5, rtol = 1e-4) => assertClose(g.toArray(), c.toArray(), atol, rtol, what);

  test('matmul: transposes, bias, accumulate, batched, model shapes', () => {
    for (const [M, N, K] of [[1, 1, 1], [17, 33, 65], [256, 1024, 512], [1000, 3, 129]]) {
      for (const ta of [false, true])
        for (const tb of [false, true]) {
          const [ac, ag] = cpuGpu(r.floats(M * K), ta ? [K, M] : [M, K]);
          const [bc, bg] = cpuGpu(r.floats(K * N), tb ? [N, K] : [K, N]);
          const [biasC, biasG] = cpuGpu(r.floats(N), [N]);
          const c = mo.matmul(ac, bc, { transA: ta, transB: tb, bias: biasC });
          const g = Tensor.full([M, N], NaN, { device: 'cuda' });
          mo.matmul(ag, bg, { transA: ta, transB: tb, bias: biasG, out: g });
          same(g, c, `${M}x${N}x${K} ${ta} ${tb}`, 1e-4, 1e-4);
          mo.matmul(ag, bg, { transA: ta, transB: tb, out: g, accumulate: true, alpha: 0.5 });
          mo.matmul(ac, bc, { transA: ta, transB: tb, out: c, accumulate: true, alpha: 0.5 });
          same(g, c, 'accumulate', 1e-4, 1e-4);
        }
    }
    const [ac, ag] = cpuGpu(r.floats(3 * 4 * 5), [3, 4, 5]);
    const [bc, bg] = cpuGpu(r.floats(3 * 5 * 6), [3, 5, 6]);
    same(mo.matmul(ag, bg), mo.matmul(ac, bc), 'batched');
  });

  test('attention forward and backward: GQA, cache offset, masks, decode', () => {
    for (const [B, Tq, Tk, Hq, Hkv, Dh, masked] of [[2, 16, 16, 8, 2, 64, false], [1, 1, 300, 4, 4, 128, false], [3, 5, 12, 4, 1, 32, true], [2, 64, 64, 2, 2, 80, true]] as const) {
      const [qc, qg] = cpuGpu(r.floats(B * Tq * Hq * Dh), [B, Tq, Hq, Dh]);
      const [kc, kg] = cpuGpu(r.floats(B * Tk * Hkv * Dh), [B, Tk, Hkv, Dh]);
      const [vc, vg] = cpuGpu(r.floats(B * Tk * Hkv * Dh), [B, Tk, Hkv, Dh]);
      const keyMask = masked ? Int32Array.from({ length: B * Tk }, (_, i) => (i % 7 === 3 ? 0 : 1)) : null;
      const c = mo.attention(qc, kc, vc, { keyMask });
      const g = mo.attention(qg, kg, vg, { keyMask });
      same(g.out, c.out, 'out');
      const [dc, dg] = cpuGpu(r.floats(B * Tq * Hq * Dh), [B, Tq, Hq, Dh]);
      const bc = mo.attentionBackward(dc, qc, kc, vc, c.out, c.lse, { keyMask });
      const bg = mo.attentionBackward(dg, qg, kg, vg, g.out, g.lse, { keyMask });
      same(bg.dq, bc.dq, 'dq', 1e-4);
      same(bg.dk, bc.dk, 'dk', 1e-4);
      same(bg.dv, bc.dv, 'dv', 1e-4);
      const bg2 = mo.attentionBackward(dg, qg, kg, vg, g.out, g.lse, { keyMask });
      assertBitsEqual(bg2.dk.toArray() as Float32Array, bg.dk.toArray() as Float32Array, 'dk deterministic');
    }
  });

  test('norms, rope, activations, cross-entropy, AdamW, copies', () => {
    const rows = 300, D = 1024;
    const [xc, xg] = cpuGpu(r.floats(rows * D), [rows, D]);
    const [wc, wg] = cpuGpu(r.floats(D), [D]);
    const [bc, bg] = cpuGpu(r.floats(D), [D]);
    const [dyc, dyg] = cpuGpu(r.floats(rows * D), [rows, D]);
    const rc = mo.rmsNorm(xc, wc, 1e-6), rg = mo.rmsNorm(xg, wg, 1e-6);
    same(rg.y, rc.y, 'rmsNorm');
    const dwc = Tensor.zeros([D]), dwg = Tensor.zeros([D], { device: 'cuda' });
    same(mo.rmsNormBackward(dyg, xg, wg, rg.rstd, dwg), mo.rmsNormBackward(dyc, xc, wc, rc.rstd, dwc), 'rmsNorm dx');
    same(dwg, dwc, 'rmsNorm dw', 1e-3);
    const lc = mo.layerNorm(xc, wc, bc, 1e-5), lg = mo.layerNorm(xg, wg, bg, 1e-5);
    same(lg.y, lc.y, 'layerNorm');
    const dwc2 = Tensor.zeros([D]), dwg2 = Tensor.zeros([D], { device: 'cuda' }), dbc = Tensor.zeros([D]), dbg = Tensor.zeros([D], { device: 'cuda' });
    same(mo.layerNormBackward(dyg, xg, wg, lg.mean, lg.rstd, dwg2, dbg), mo.layerNormBackward(dyc, xc, wc, lc.mean, lc.rstd, dwc2, dbc), 'layerNorm dx');
    same(dwg2, dwc2, 'layerNorm dw', 1e-3);
    same(dbg, dbc, 'layerNorm db', 1e-3);
    const pos = Int32Array.from({ length: 2 * 150 }, (_, i) => i % 150);
    const [qc, qg] = cpuGpu(r.floats(2 * 150 * 4 * 64), [2, 150, 4, 64]);
    same(mo.rope(qg, pos, 1e6), mo.rope(qc, pos, 1e6), 'rope');
    same(mo.rope(qg, pos, 1e6, true), mo.rope(qc, pos, 1e6, true), 'rope inverse');
    same(mo.swiglu(xg, dyg), mo.swiglu(xc, dyc), 'swiglu');
    const sc = mo.swigluBackward(wc, wc, bc), sg = mo.swigluBackward(wg, wg, bg);
    same(sg.dgate, sc.dgate, 'swiglu dgate');
    same(mo.gelu(xg), mo.gelu(xc), 'gelu');
    same(mo.geluBackward(dyg, xg), mo.geluBackward(dyc, xc), 'gelu dx');
    const V = 5000, N = 64;
    const [zc, zg] = cpuGpu(r.floats(N * V, 4), [N, V]);
    const targets = Int32Array.from({ length: N }, (_, i) => (i % 9 === 0 ? -100 : (i * 977) % V));
    const cc = mo.crossEntropy(zc, targets, { withGrad: true }), cg = mo.crossEntropy(zg, targets, { withGrad: true });
    assertScalarClose(cg.loss, cc.loss, 1e-6, 1e-6, 'CE loss');
    same(cg.dlogits!, cc.dlogits!, 'CE grad', 1e-8);
    const n = 10000;
    const [pc, pg] = cpuGpu(r.floats(n), [n]);
    const [gc, gg] = cpuGpu(r.floats(n), [n]);
    const mc = Tensor.zeros([n]), vc = Tensor.zeros([n]), mg = Tensor.zeros([n], { device: 'cuda' }), vg = Tensor.zeros([n], { device: 'cuda' });
    for (let step = 1; step <= 3; step++) {
      native().adamw(pc.native, gc.native, mc.native, vc.native, 1e-3, 0.9, 0.999, 1e-8, 0.01, step);
      native().adamw(pg.native, gg.native, mg.native, vg.native, 1e-3, 0.9, 0.999, 1e-8, 0.01, step);
    }
    same(pg, pc, 'adamw params', 1e-6);
    assertScalarClose(mo.sumSquares(gg), mo.sumSquares(gc), 0, 1e-9, 'sumSquares');
    const dstC = Tensor.zeros([2, 10, 8]), dstG = Tensor.zeros([2, 10, 8], { device: 'cuda' });
    const [sc2, sg2] = cpuGpu(r.floats(2 * 4 * 8), [2, 4, 8]);
    mo.copyBlock(sc2, 1, dstC, 5, 3);
    mo.copyBlock(sg2, 1, dstG, 5, 3);
    same(dstG, dstC, 'copyBlock');
    const rowsIdx = Int32Array.of(7, 2, 9);
    const baseC = Tensor.zeros([10, 8]), baseG = Tensor.zeros([10, 8], { device: 'cuda' });
    const [srcC, srcG] = cpuGpu(r.floats(3 * 8), [3, 8]);
    mo.scatterRows(srcC, rowsIdx, baseC);
    mo.scatterRows(srcG, rowsIdx, baseG);
    same(baseG, baseC, 'scatterRows');
  });

  test.run();
}
