// Optimizer-side utilities: global-norm clipping, frozen parameters, gradient
// accumulation across micro-batches.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { autograd, scope } from '../lib/index';
import * as F from '../lib/autograd/model-ops';
import { Qwen2ForCausalLM, type DecoderConfig } from '../lib/nn/qwen2';
import { clipGradNorm } from '../lib/optim/adamw';
import { assertClose, assertScalarClose } from './helpers/check';

const config: DecoderConfig = {
  vocabSize: 20, hiddenSize: 8, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 16,
  ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: true, attentionBias: true, maxPositions: 32,
};
const test = suite('training utilities');
const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 3 + 1) % 20);
const targets = Int32Array.from({ length: 12 }, (_, i) => (i * 5 + 2) % 20);

function gradsOf(model: Qwen2ForCausalLM) {
  return model.parameters().map((p) => (p.grad ? (p.grad.toArray() as Float32Array) : null));
}

test('clipGradNorm scales every gradient to the requested global norm', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 1, initStd: 0.3 });
  scope(() => autograd.backward(F.crossEntropy(model.forward({ ids, shape: [2, 6] }).logits, targets)));
  const before = gradsOf(model);
  const norm = Math.sqrt(before.reduce((s, g) => s + (g ? g.reduce((a, v) => a + v * v, 0) : 0), 0));
  const reported = clipGradNorm(model.parameters(), norm / 4);
  assertScalarClose(reported, norm, 1e-6, 1e-5, 'norm before');
  gradsOf(model).forEach((g, i) => assertClose(g!, before[i]!.map((v) => (v * (norm / 4)) / (norm + 1e-6)), 1e-9, 1e-5, `param ${i}`));
  assert.ok(clipGradNorm(model.parameters(), norm) <= norm / 4 + 1e-4, 'already below: unchanged');
  model.dispose();
});

test('frozen parameters get no gradient; others do', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 2, initStd: 0.3 });
  model.model.layers[0].freeze();
  scope(() => autograd.backward(F.crossEntropy(model.forward({ ids, shape: [2, 6] }).logits, targets)));
  for (const [name, p] of model.namedParameters()) {
    if (name.startsWith('model.layers.0.')) assert.is(p.grad, null, `${name} frozen`);
    else assert.ok(p.grad, `${name} trained`);
  }
  model.dispose();
});

test('two micro-batches accumulate to the gradient of the whole batch', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 3, initStd: 0.3 });
  scope(() => autograd.backward(F.crossEntropy(model.forward({ ids, shape: [2, 6] }).logits, targets)));
  const whole = gradsOf(model);
  model.zeroGrad();
  for (const half of [0, 1]) {
    scope(() => {
      const part = ids.subarray(half * 6, half * 6 + 6), tg = targets.subarray(half * 6, half * 6 + 6);
      // The mean over the whole batch: each half divides by the total count of targets.
      autograd.backward(F.crossEntropy(model.forward({ ids: part, shape: [1, 6] }).logits, tg, { divisor: 12 }));
    });
  }
  gradsOf(model).forEach((g, i) => assertClose(g!, whole[i]!, 1e-6, 1e-4, `param ${i}`));
  model.dispose();
});

test.run();
