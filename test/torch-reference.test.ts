// PyTorch as an independent oracle for the whole VaLR stage-2 step. The fixture
// test/fixtures/torch_valr_step/step.safetensors holds a tiny multimodal model's
// parameters, one batch (3 samples: 2 + 1 + 1 latent segments of K = 4, 4 views, one
// teacher on a 3x3 grid) and what bench/torch_valr_reference.py --oracle computed
// from them in float64: the loss, CE, REPA, every parameter's gradient and the
// parameters after clip + one AdamW step. No Python is needed here. Regenerate with
//   npx tsx bench/train.bench.ts --write-fixture
// (see test/fixtures/torch_valr_step/README.md).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as path from 'path';
import * as F from '../lib/autograd/model-ops';
import { backward } from '../lib/autograd/function';
import { repaCosineLoss } from '../lib/autograd/alignment-ops';
import { readSafetensorsSync, toFloat32, toInt32 } from '../lib/io/safetensors';
import { splitLatentSample } from '../lib/latent/layout';
import { RepaProjector } from '../lib/latent/repa-projector';
import { latentForward } from '../lib/latent/train-forward';
import { MultimodalModel } from '../lib/nn/mllm';
import { AdamW, clipGradNorm } from '../lib/optim/adamw';
import { scope, Tensor } from '../lib/tensor';
import { assertScalarClose } from './helpers/check';

const FILE = path.join(__dirname, 'fixtures', 'torch_valr_step', 'step.safetensors');
const file = readSafetensorsSync(FILE);
const cfg = JSON.parse(file.metadata.config) as {
  decoder: MultimodalModel['config']['decoder'];
  vision: MultimodalModel['config']['vision'];
  imageTokenId: number;
  tokens: { latentStart: number; latentEnd: number; slot: number };
  K: number;
  tapLayer: number;
  lambda: number;
  teachers: { grid: [number, number]; dim: number }[];
  projectorHidden: number;
  lr: number;
  projectorLr: number;
  weightDecay: number;
  maxGradNorm: number;
};
const f32 = (name: string) => {
  const rec = file.tensors.get(name);
  if (!rec) throw new Error(`the fixture has no tensor '${name}'`);
  return toFloat32(rec, name);
};
const i32 = (name: string) => toInt32(file.tensors.get(name)!, name);
const scalar = (name: string) => f32(name)[0];

/** ||a - e|| / ||e|| (absolute when e is all zeros) */
function relL2(a: Float32Array, e: Float32Array): number {
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - e[i]) ** 2;
    n += e[i] ** 2;
  }
  return Math.sqrt(d) / (n > 0 ? Math.sqrt(n) : 1);
}

function build() {
  const model = new MultimodalModel({ decoder: cfg.decoder, vision: cfg.vision, imageTokenId: cfg.imageTokenId });
  const g = Math.round(Math.sqrt(cfg.K));
  const psi = cfg.teachers.map((t) => new RepaProjector(cfg.decoder.hiddenSize, cfg.projectorHidden, t.dim, [g, g], t.grid));
  const named = [...model.namedParameters(), ...psi.flatMap((p, i) => p.namedParameters(`psi.${i}.`))];
  for (const [name, p] of named) p.value.write(f32(`param.${name}`));
  return { model, psi, named };
}

// The batch, as trainStage builds it.
const lengths = i32('batch.lengths'), idsAll = i32('batch.ids'), labelsAll = i32('batch.labels');
const T = idsAll.length / lengths.length;
const samples = Array.from(lengths, (n, b) => ({ ids: idsAll.slice(b * T, b * T + n), labels: labelsAll.slice(b * T, b * T + n) }));
const imagesRec = file.tensors.get('batch.images')!;
const images = f32('batch.images'), numImages = imagesRec.shape[0];

/** Our stage-2 forward + backward (the body of trainStage's loop); returns the loss parts. */
function valrStep(model: MultimodalModel, psi: RepaProjector[]) {
  return scope(() => {
    const layouts = samples.map((s) => splitLatentSample(s.ids, s.labels, cfg.K, cfg.tokens));
    const out = latentForward(model.language_model, layouts, {
      K: cfg.K,
      tapLayer: cfg.tapLayer,
      embedStage: (s, ids, shape) => (s === 0 ? model.embed({ ids, shape, images, numImages }) : undefined),
    });
    // teacher rows in the fixture are in (sample, segment) order; ours in out.segments order
    const first = layouts.map((_, b) => layouts.slice(0, b).reduce((n, l) => n + l.segments, 0));
    const targets = cfg.teachers.map((t, m) => {
      const all = f32(`batch.teacher.${m}`), row = t.grid[0] * t.grid[1] * t.dim;
      const data = new Float32Array(out.segments.length * row);
      out.segments.forEach((sg, i) => data.set(all.subarray((first[sg.sample] + sg.segment) * row, (first[sg.sample] + sg.segment + 1) * row), i * row));
      return Tensor.fromArray(data, [out.segments.length, t.grid[0] * t.grid[1], t.dim]);
    });
    const repa = repaCosineLoss(psi.map((p) => p.forward(out.taps!)), targets);
    const total = F.add(out.ce, repa, 1, cfg.lambda);
    backward(total);
    const v = (x: { value: Tensor }) => (x.value.toArray() as Float32Array)[0];
    return { loss: v(total), ce: v(out.ce), repa: v(repa), segments: out.segments.length };
  });
}

const test = suite('PyTorch oracle: one VaLR stage-2 step');

test('the fixture names exactly our parameters', () => {
  const { model, psi, named } = build();
  const ours = named.map(([n]) => n).sort();
  const theirs = [...file.tensors.keys()].filter((k) => k.startsWith('param.')).map((k) => k.slice(6)).sort();
  assert.equal(ours, theirs);
  for (const [name, p] of named) assert.equal([...p.value.shape], file.tensors.get(`param.${name}`)!.shape, name);
  assert.ok(ours.includes('vision_tower.blocks.0.qkv.weight') && ours.includes('language_model.model.layers.0.self_attn.q_proj.weight') && ours.includes('psi.0.fc1.weight'));
  assert.match(file.metadata.oracle ?? '', /^torch /);
  model.dispose();
  psi.forEach((p) => p.dispose());
});

test('loss, CE, REPA and every gradient match PyTorch', () => {
  const { model, psi, named } = build();
  const r = valrStep(model, psi);
  assert.is(r.segments, 4);
  assertScalarClose(r.loss, scalar('expected.loss'), 0, 1e-5, 'loss');
  // the parts: also 1e-6 absolute (REPA, a mean of cosines, can be near 0)
  assertScalarClose(r.ce, scalar('expected.ce'), 1e-6, 1e-5, 'CE');
  assertScalarClose(r.repa, scalar('expected.repa'), 1e-6, 1e-5, 'REPA');
  const bad: string[] = [];
  let worst = 0;
  for (const [name, p] of named) {
    const expected = f32(`grad.${name}`);
    const got = p.grad ? (p.grad.toArray() as Float32Array) : new Float32Array(expected.length);
    const e = relL2(got, expected);
    worst = Math.max(worst, e);
    if (!(e <= 1e-3)) bad.push(`${name}: relative L2 error ${e.toExponential(2)}`);
    if (expected.some((x) => x !== 0)) assert.ok(got.some((x) => x !== 0), `${name}: PyTorch has a gradient, we have none`);
  }
  assert.ok(bad.length === 0, `gradients differ from PyTorch's:\n  ${bad.join('\n  ')}`);
  assert.ok(worst < 1e-3);
  model.dispose();
  psi.forEach((p) => p.dispose());
});

test('clipGradNorm + one AdamW step (vision tower frozen) match torch.optim.AdamW', () => {
  const { model, psi, named } = build();
  model.vision_tower.freeze(true);
  valrStep(model, psi);
  const lm = [...model.language_model.parameters(), ...model.projector.parameters()];
  const groups = [
    { params: lm, lr: cfg.lr, weightDecay: cfg.weightDecay },
    { params: psi.flatMap((p) => p.parameters()), lr: cfg.projectorLr, weightDecay: cfg.weightDecay },
  ];
  const optimizer = new AdamW(groups);
  const norm = clipGradNorm(groups.flatMap((g) => g.params), cfg.maxGradNorm);
  assertScalarClose(norm, scalar('expected.grad_norm'), 0, 1e-4, 'gradient norm before clipping');
  optimizer.update();
  const bad: string[] = [];
  for (const [name, p] of named) {
    const before = f32(`param.${name}`), after = f32(`after.${name}`), got = p.value.toArray() as Float32Array;
    if (name.startsWith('vision_tower.')) {
      assert.equal(Array.from(got), Array.from(before), `${name} is frozen`);
      continue;
    }
    // Compare the updates. The first AdamW step is about lr * sign(g), so an element
    // whose gradient is at rounding-noise level can flip; a relative L2 of 1e-3 allows
    // a few such elements (we see about 1e-5) and still catches a wrong lr, decay, bias correction or clip.
    const e = relL2(got.map((x, i) => x - before[i]), after.map((x, i) => x - before[i]));
    if (!(e <= 1e-3)) bad.push(`${name}: relative L2 error of the update ${e.toExponential(2)}`);
  }
  assert.ok(bad.length === 0, `AdamW updates differ from PyTorch's:\n  ${bad.join('\n  ')}`);
  optimizer.dispose();
  model.dispose();
  psi.forEach((p) => p.dispose());
});

test.run();
