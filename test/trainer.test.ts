// The training loop on a tiny synthetic multimodal task: losses fall in both stages,
// a run stopped mid-stage and resumed from its checkpoint reproduces the losses of an
// uninterrupted run exactly, and checkpoints are written atomically.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MultimodalModel } from '../lib/nn/mllm';
import { RepaProjector } from '../lib/latent/repa-projector';
import { defaultConfig } from '../lib/train/config';
import { readCheckpointState } from '../lib/train/checkpoint';
import { trainStage, type EncodedSample, type TeacherLike } from '../lib/train/trainer';
import { rng } from './helpers/check';

// ids: 0 pad, 1 bos, 2 eos, 3 <image>, 4 <latent>, 5 </latent>, 6 <slot>, 7 <step>, 8 <answer>, 9.. words
const tokens = { latentStart: 4, latentEnd: 5, slot: 6 };
const K = 4;
const mllm = () => new MultimodalModel({
  decoder: { vocabSize: 20, hiddenSize: 16, numLayers: 2, numHeads: 2, numKvHeads: 1, intermediateSize: 32, ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: true, attentionBias: true, maxPositions: 128 },
  vision: { imageSize: 8, patchSize: 4, channels: 3, hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 16, layerNormEps: 1e-6 },
  imageTokenId: 3,
}, { seed: 1 });

// The answer is the brightest image: a task the model must look at the images for.
const r = rng(9);
const imageData = new Map<string, Float32Array>();
function sample(i: number, latents: boolean): EncodedSample {
  const a = `img${i}a`, b = `img${i}b`;
  const bright = i % 2;
  imageData.set(a, r.floats(3 * 64).map((v) => v * 0.1 + (bright === 0 ? 1 : 0)));
  imageData.set(b, r.floats(3 * 64).map((v) => v * 0.1 + (bright === 1 ? 1 : 0)));
  const seg = (view: number) => (latents ? [4, 6, 6, 6, 6, 5] : []).concat([7, 10 + view]);
  const ids = [1, 3, 3, 3, 3, 3, 3, 3, 3, 9, ...seg(0), ...seg(1), 8, 14 + bright, 2];
  const labels = ids.map((t, p) => (p < 10 || t === 6 || t === 5 ? -100 : t));
  return { ids: Int32Array.from(ids), labels: Int32Array.from(labels), images: [a, b], segmentImages: latents ? [a, b] : [] };
}
const teacher: TeacherLike = {
  name: 'mean', grid: [2, 2], dim: 3,
  batch: (ids) => Float32Array.from(ids.flatMap((id) => { const x = imageData.get(id)!; return Array.from({ length: 12 }, (_, k) => x[k * 5]); })),
};
const test = suite('trainer');

test('stage 1 and stage 2 (latents + REPA) reduce their losses', async () => {
  const model = mllm();
  const config = defaultConfig({ K, tapLayer: 1, stage1: { ...defaultConfig().stage1, epochs: 12, batchSize: 8, lr: 3e-3 }, stage2: { ...defaultConfig().stage2, epochs: 4, batchSize: 8 } });
  const plain = Array.from({ length: 16 }, (_, i) => sample(i, false));
  const s1 = await trainStage({ model, stage: 1, config, data: plain, image: (id) => imageData.get(id)!, tokens });
  assert.ok(s1.losses[s1.losses.length - 1] < s1.losses[0] * 0.8, `stage 1: ${s1.losses[0]} -> ${s1.losses[s1.losses.length - 1]}`);
  const psi = [new RepaProjector(16, 8, 3, [2, 2], [2, 2], { seed: 2 })];
  const latent = Array.from({ length: 16 }, (_, i) => sample(i, true));
  const s2 = await trainStage({ model, stage: 2, config, data: latent, image: (id) => imageData.get(id)!, tokens, projectors: psi, teachers: [teacher] });
  assert.ok(s2.losses.every(Number.isFinite));
  assert.ok(s2.losses[s2.losses.length - 1] < s2.losses[0], `stage 2: ${s2.losses[0]} -> ${s2.losses[s2.losses.length - 1]}`);
  model.dispose();
});

test('gradAccumulation, batchSize or epochs that would never finish an epoch are refused (grad-accum 0 used to loop forever)', async () => {
  const model = mllm();
  const data = Array.from({ length: 4 }, (_, i) => sample(i, false));
  for (const bad of [{ gradAccumulation: 0 }, { batchSize: 0 }, { gradAccumulation: 1.5 }, { epochs: -1 }]) {
    const config = defaultConfig({ stage1: { ...defaultConfig().stage1, ...bad } });
    const name = Object.keys(bad)[0];
    const run = trainStage({ model, stage: 1, config, data, image: (id) => imageData.get(id)!, tokens });
    const err = await run.then(() => null, (e) => e);
    assert.ok(err, `${name} accepted`);
    assert.is(err.code, 'ERR_VALR_ARGUMENT');
    assert.match(err.message, new RegExp(name));
  }
  model.dispose();
});

test('a diverging run stops with ERR_VALR_DIVERGED instead of finishing with NaN weights', async () => {
  const model = mllm();
  const data = Array.from({ length: 16 }, (_, i) => sample(i, false));
  const config = defaultConfig({ stage1: { ...defaultConfig().stage1, epochs: 20, batchSize: 4, lr: 1e30, maxGradNorm: 1e30 } });
  const err = await trainStage({ model, stage: 1, config, data, image: (id) => imageData.get(id)!, tokens }).then(() => null, (e) => e);
  assert.ok(err, 'a run at lr 1e30 finished without an error');
  assert.is(err.code, 'ERR_VALR_DIVERGED');
  assert.match(err.message, /non-finite/);
  model.dispose();
});

test('stopping mid-stage and resuming reproduces the uninterrupted losses exactly', async () => {
  const config = defaultConfig({ K, tapLayer: 1, stage2: { ...defaultConfig().stage2, epochs: 2, batchSize: 4 } });
  const data = Array.from({ length: 12 }, (_, i) => sample(i, true));
  const run = async (dir: string | undefined, stopAt?: number, resume = false) => {
    const model = mllm();
    const psi = [new RepaProjector(16, 8, 3, [2, 2], [2, 2], { seed: 2 })];
    let steps = 0;
    const res = await trainStage({
      model, stage: 2, config, data, image: (id) => imageData.get(id)!, tokens, projectors: psi, teachers: [teacher],
      checkpointDir: dir, resume, shouldStop: () => stopAt !== undefined && ++steps >= stopAt,
    });
    model.dispose();
    psi[0].dispose();
    return res;
  };
  const full = await run(undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'valr-ckpt-'));
  const first = await run(dir, 2);
  assert.ok(first.stopped);
  const state = readCheckpointState(dir)!;
  assert.is(state.step, 2);
  assert.ok(fs.existsSync(path.join(dir, state.files.params)) && fs.existsSync(path.join(dir, state.files.optimizer)));
  // A half-written temp file from a killed save must not disturb resuming.
  fs.writeFileSync(path.join(dir, 'params-s2-9999999.safetensors.tmp-1-x'), 'partial');
  const second = await run(dir, undefined, true);
  assert.equal([...first.losses, ...second.losses], full.losses, 'same losses as one uninterrupted run');
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
