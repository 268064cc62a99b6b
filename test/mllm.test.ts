// Vision tower, projector and the multimodal model: image tokens land at the
// placeholders, gradients reach the vision tower, and bad inputs are clear errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { autograd, scope } from '../lib/index';
import * as F from '../lib/autograd/model-ops';
import { MultimodalModel, type MLLMConfig } from '../lib/nn/mllm';
import { presets } from '../lib/nn/presets';
import { Qwen2ForCausalLM } from '../lib/nn/qwen2';
import { assertClose, assertScalarClose, assertThrowsCode, rng } from './helpers/check';

const config: MLLMConfig = {
  decoder: { ...presets.tiny.decoder, hiddenSize: 16, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 32, vocabSize: 20 },
  vision: { imageSize: 8, patchSize: 4, channels: 3, hiddenSize: 12, numLayers: 1, numHeads: 2, intermediateSize: 24, layerNormEps: 1e-6 },
  imageTokenId: 19,
};
const test = suite('multimodal model');

// Two samples; sample 0 has two images (multi-view), sample 1 one image; 4 tokens per image.
function batch() {
  const T = 12, I = config.imageTokenId;
  const ids = Int32Array.from([
    1, I, I, I, I, 2, I, I, I, I, 3, 4,
    5, 6, I, I, I, I, 7, 8, 9, 10, 11, 12,
  ]);
  const images = rng(3).floats(3 * 3 * 8 * 8);
  return { ids, shape: [2, T] as [number, number], images, numImages: 3 };
}

test('image features are spliced at the placeholders, text embeddings elsewhere', () => {
  const model = new MultimodalModel(config, { seed: 5 });
  const b = batch();
  scope(() => {
    const emb = model.embed(b).value.toArray() as Float32Array;
    const feats = model.projector.forward(model.vision_tower.forward(b.images, 3)).value.toArray() as Float32Array;
    const table = model.language_model.model.embed_tokens.weight.value.toArray() as Float32Array;
    const D = 16;
    let img = 0;
    b.ids.forEach((id, pos) => {
      const row = emb.subarray(pos * D, (pos + 1) * D);
      if (id === config.imageTokenId) assertClose(row, feats.subarray(img * D, ++img * D), 0, 0, `image row ${pos}`);
      else assertClose(row, table.subarray(id * D, (id + 1) * D), 0, 0, `text row ${pos}`);
    });
    assert.is(img, 12);
  });
  model.dispose();
});

test('gradients of the LM loss reach the vision tower (finite differences)', () => {
  const model = new MultimodalModel(config, { seed: 6 });
  const b = batch();
  const targets = Int32Array.from({ length: 24 }, (_, i) => (b.ids[i] === config.imageTokenId ? -100 : (i * 7) % 19));
  const lossOf = () => scope(() => (F.crossEntropy(model.forward(b).logits, targets).value.toArray() as Float32Array)[0]);
  scope(() => autograd.backward(F.crossEntropy(model.forward(b).logits, targets)));
  for (const [name, idx] of [['vision_tower.blocks.0.fc1.weight', 5], ['projector.linear_1.weight', 17], ['vision_tower.patch_embed.bias', 2]] as const) {
    const p = model.namedParameters().find(([n]) => n === name)![1];
    const g = (p.grad!.toArray() as Float32Array)[idx];
    const data = p.value.toArray() as Float32Array;
    const h = 1e-2, orig = data[idx];
    data[idx] = orig + h;
    p.value.write(data);
    const up = lossOf();
    data[idx] = orig - h;
    p.value.write(data);
    const down = lossOf();
    data[idx] = orig;
    p.value.write(data);
    assertScalarClose(g, (up - down) / (2 * h), 1e-4, 3e-2, `d loss / d ${name}[${idx}]`);
    assert.ok(Math.abs(g) > 0, `${name} gets a gradient`);
  }
  model.dispose();
});

test('placeholder count must match the images; bad configs are clear errors', () => {
  const model = new MultimodalModel(config, { seed: 7 });
  const b = batch();
  assertThrowsCode(() => model.embed({ ...b, numImages: 2 }), 'ERR_VALR_SHAPE', /12 image placeholders but 2 image\(s\) need 8/);
  assertThrowsCode(() => model.embed({ ...b, images: b.images.subarray(1) }), 'ERR_VALR_SHAPE', /images must be/);
  model.dispose();
  assertThrowsCode(() => new Qwen2ForCausalLM({ ...config.decoder, numHeads: 3 }), 'ERR_VALR_ARGUMENT', /multiple of numHeads/);
});

test('the tiny preset builds and runs a forward pass', () => {
  const model = new MultimodalModel({ decoder: { ...presets.tiny.decoder, vocabSize: 50 }, vision: presets.tiny.vision, imageTokenId: 49 });
  const n = model.tokensPerImage;
  const ids = Int32Array.from({ length: n + 4 }, (_, i) => (i >= 2 && i < 2 + n ? 49 : i));
  scope(() => {
    const out = model.forward({ ids, shape: [1, n + 4], images: rng(1).floats(3 * 32 * 32), numImages: 1, outputHiddenStates: true });
    assert.equal(out.logits.value.shape, [1, n + 4, 50]);
    assert.is(out.hiddenStates!.length, presets.tiny.decoder.numLayers + 1);
    assert.ok((out.logits.value.toArray() as Float32Array).every(Number.isFinite));
  });
  assert.ok(model.parameterCount() > 100_000);
  model.dispose();
});

test.run();
