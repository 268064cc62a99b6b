// The alignment kernels against answers PyTorch computed (test/fixtures/
// make_alignment_fixtures.py writes alignment.json; these tests need no Python).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as path from 'path';
import { kernels } from '../lib/index';
import { assertClose, assertScalarClose, maxAbs } from './helpers/check';

interface UpsampleCase {
  name: string; S: number; gh: number; gw: number; Gh: number; Gw: number; D: number;
  x: number[]; y: number[]; dy: number[]; dx: number[];
}
interface RepaCase {
  name: string; S: number; weights: number[] | null; gradScale: number; per_teacher: number[]; total: number;
  teachers: { P: number; D: number; pred: number[]; target: number[]; grad: number[] }[];
}
const fixtures: { torch_version: string; upsample: UpsampleCase[]; repa: RepaCase[] } = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'alignment.json'), 'utf8'),
);

const test = suite(`PyTorch ${fixtures.torch_version} fixtures`);

test('fixture file has the expected cases', () => {
  assert.ok(fixtures.upsample.length >= 8);
  assert.ok(fixtures.repa.length >= 6);
});

for (const c of fixtures.upsample) {
  test(`upsample ${c.name}: F.interpolate(bilinear, align_corners=False) forward and backward`, () => {
    const shape = [c.S, c.gh, c.gw, c.D];
    // PyTorch computed these in float32 too, possibly summing in another order.
    assertClose(kernels.upsampleBilinear(Float32Array.from(c.x), shape, [c.Gh, c.Gw]), c.y, 1e-6, 1e-5, 'y');
    assertClose(kernels.upsampleBilinearBackward(Float32Array.from(c.dy), shape, [c.Gh, c.Gw]), c.dx, 1e-5, 1e-5, 'dx');
  });
}

for (const c of fixtures.repa) {
  test(`repa ${c.name}: F.cosine_similarity loss and autograd gradient`, () => {
    const r = kernels.repaCosineLossMulti(
      c.teachers.map((t) => ({ pred: Float32Array.from(t.pred), target: Float32Array.from(t.target), shape: [c.S, t.P, t.D] })),
      c.weights ? Float32Array.from(c.weights) : null,
      { gradScale: c.gradScale },
    );
    assertScalarClose(r.loss, c.total, 1e-9, 1e-7, 'total');
    r.perTeacher.forEach((l, m) => assertScalarClose(l, c.per_teacher[m], 1e-9, 1e-7, `teacher ${m}`));
    // float32 output of float64 math: relative to the largest gradient element.
    r.gradPred.forEach((g, m) => assertClose(g, c.teachers[m].grad, maxAbs(c.teachers[m].grad) * 1e-6, 1e-6, `grad ${m}`));
  });
}

test.run();
