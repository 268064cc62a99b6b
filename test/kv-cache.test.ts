// The KV cache: chunked forward passes (decode one token, or train a chunk) give the
// same hidden states as one full pass, and gradients flow into the cached part.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { autograd, scope } from '../lib/index';
import * as F from '../lib/autograd/model-ops';
import { KVCache, Qwen2ForCausalLM, type DecoderConfig } from '../lib/nn/qwen2';
import { assertClose } from './helpers/check';

const config: DecoderConfig = {
  vocabSize: 30, hiddenSize: 16, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 24,
  ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false, attentionBias: true, maxPositions: 64,
};
const test = suite('KV cache');
const B = 2, T = 9;
const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 11 + 3) % 30);
const slice = (b0: number, t0: number, len: number) => Int32Array.from({ length: B * len }, (_, i) => ids[Math.floor(i / len) * T + t0 + (i % len)]);
const hiddenRows = (h: Float32Array, len: number, D: number, t: number) =>
  Float32Array.from({ length: B * D }, (_, i) => h[(Math.floor(i / D) * len + t) * D + (i % D)]);

test('token-by-token decoding with a cache equals the full forward', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 3, initStd: 0.2 });
  const D = config.hiddenSize;
  const full = scope(() => model.model.forward({ ids, shape: [B, T] }).hidden.value.toArray() as Float32Array);
  autograd.noGrad(() => {
    const cache = new KVCache(config.numLayers);
    for (let t = 0; t < T; t++) {
      const h = scope(() => model.model.forward({ ids: slice(0, t, 1), shape: [B, 1], cache }).hidden.value.toArray() as Float32Array);
      assertClose(h, hiddenRows(full, T, D, t), 1e-5, 1e-4, `step ${t}`);
    }
    assert.is(cache.length, T);
    cache.dispose();
  });
  model.dispose();
});

test('chunked training (cache + chunk) matches the full pass in loss and every gradient', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 4, initStd: 0.2 });
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % 30);
  const fullGrads = scope(() => {
    autograd.backward(F.crossEntropy(model.forward({ ids, shape: [B, T] }).logits, targets));
    return model.parameters().map((p) => p.grad!.toArray() as Float32Array);
  });
  model.zeroGrad();
  scope(() => {
    const cache = new KVCache(config.numLayers);
    const chunks = [4, 3, 2];
    const logits: autograd.Variable[] = [];
    let t0 = 0;
    for (const len of chunks) {
      logits.push(model.forward({ ids: slice(0, t0, len), shape: [B, len], cache }).logits);
      t0 += len;
    }
    // Reassemble [B, T, V] in order and take the same loss.
    const all = F.concatSeq(logits);
    autograd.backward(F.crossEntropy(all, targets));
    cache.dispose();
  });
  model.parameters().forEach((p, i) => assertClose(p.grad!.toArray(), fullGrads[i], 1e-5, 1e-3, `param ${i}`));
  model.dispose();
});

test('a padded key is never attended to', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 5, initStd: 0.2 });
  const mask = new Int32Array(B * T).fill(1);
  mask[T + 2] = 0; // sample 1, position 2
  const other = ids.slice();
  other[T + 2] = (other[T + 2] + 5) % 30; // changing a masked token changes nothing
  const a = model.logits(ids, [B, T], mask), b = model.logits(other, [B, T], mask);
  const V = config.vocabSize;
  for (let t = 0; t < T; t++) {
    if (t === 2) continue;
    assertClose(a.subarray((T + t) * V, (T + t + 1) * V), b.subarray((T + t) * V, (T + t + 1) * V), 1e-6, 1e-6, `pos ${t}`);
  }
  model.dispose();
});

test.run();
