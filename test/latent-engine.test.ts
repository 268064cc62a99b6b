// The native inference engine: prefill and decode through the contiguous cache match
// the TypeScript graph, and a fused latent segment gives the same taps and hidden
// states as running the same K feedback steps through the graph one op at a time.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { autograd, scope, Tensor } from '../lib/index';
import { DecoderSession } from '../lib/latent/decoder-session';
import { KVCache, Qwen2ForCausalLM, type DecoderConfig } from '../lib/nn/qwen2';
import { assertClose, assertThrowsCode } from './helpers/check';

const config: DecoderConfig = {
  vocabSize: 40, hiddenSize: 32, numLayers: 3, numHeads: 4, numKvHeads: 2, intermediateSize: 48,
  ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false, attentionBias: true, maxPositions: 128,
};
const test = suite('latent engine');
const B = 2, T = 7;
const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 13 + 5) % 40);

test('prefill + decode through the native engine match the graph forward', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 11, initStd: 0.2 });
  const full = model.logits(ids, [B, T]);
  const session = new DecoderSession(model, B, 32);
  scope(() => {
    // prefill T-1 tokens, then decode the last one
    const pre = Int32Array.from({ length: B * (T - 1) }, (_, i) => ids[Math.floor(i / (T - 1)) * T + (i % (T - 1))]);
    const r1 = session.forward(session.embed(pre, T - 1), { logits: true });
    const last = Int32Array.from({ length: B }, (_, b) => ids[b * T + T - 1]);
    const r2 = session.forward(session.embed(last, 1), { logits: true });
    const V = config.vocabSize;
    const got1 = r1.logits!.toArray() as Float32Array, got2 = r2.logits!.toArray() as Float32Array;
    for (let b = 0; b < B; b++) {
      assertClose(got1.subarray(b * V, (b + 1) * V), full.subarray((b * T + T - 2) * V, (b * T + T - 1) * V), 1e-5, 1e-4, `prefill row ${b}`);
      assertClose(got2.subarray(b * V, (b + 1) * V), full.subarray((b * T + T - 1) * V, (b * T + T) * V), 1e-5, 1e-4, `decode row ${b}`);
    }
  });
  assert.is(session.length, T);
  session.dispose();
  model.dispose();
});

test('a fused latent segment equals K feedback steps through the graph', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 12, initStd: 0.2 });
  const K = 5, tapLayer = 2, D = config.hiddenSize;
  // Graph path: prefix, then K steps each fed the previous post-norm hidden.
  const graph = autograd.noGrad(() => scope(() => {
    const cache = new KVCache(config.numLayers);
    const pre = model.model.forward({ ids, shape: [B, T], cache });
    let h = sliceLast(pre.hidden.value, B, T, D);
    const taps: Float32Array[] = [];
    let last = new Float32Array();
    for (let j = 0; j < K; j++) {
      const out = model.model.forward({ embeds: new autograd.Variable(h.reshape([B, 1, D])), shape: [B, 1], cache, outputHiddenStates: true });
      taps.push(out.hiddenStates![tapLayer].value.toArray() as Float32Array);
      h = out.hidden.value;
      last = h.toArray() as Float32Array;
    }
    cache.dispose();
    return { taps, last, h0: sliceLast(pre.hidden.value, B, T, D).toArray() as Float32Array };
  }));
  const session = new DecoderSession(model, B, 32);
  scope(() => {
    const pre = session.forward(session.embed(ids, T));
    const h0 = Tensor.fromArray(graph.h0, [B, D]);
    assertClose(sliceLast(pre.hidden, B, T, D).toArray(), graph.h0, 1e-5, 1e-4, 'prefix hidden');
    const { taps, hidden } = session.latent(h0, K, tapLayer);
    const got = taps.toArray() as Float32Array;
    for (let j = 0; j < K; j++) {
      const col = Float32Array.from({ length: B * D }, (_, i) => got[(Math.floor(i / D) * K + j) * D + (i % D)]);
      assertClose(col, graph.taps[j], 1e-5, 1e-4, `tap of step ${j}`);
    }
    assertClose(hidden.toArray(), graph.last, 1e-5, 1e-4, 'last hidden');
  });
  assert.is(session.length, T + K);
  assert.equal(Array.from(session.nextPosition), [T + K, T + K]);
  session.dispose();
  model.dispose();
});

test('padding in the prompt: masked positions are skipped and use no RoPE index', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 13, initStd: 0.2 });
  // Row 1 has 2 padding tokens at the end: its next token must see the same as an unpadded run.
  const mask = Int32Array.from({ length: B * T }, (_, i) => (i >= T + T - 2 ? 0 : 1));
  const session = new DecoderSession(model, B, 16);
  const probe = Int32Array.of(3, 3);
  const padded = scope(() => {
    session.forward(session.embed(ids, T), { mask });
    return session.forward(session.embed(probe, 1), { logits: true }).logits!.toArray() as Float32Array;
  });
  assert.equal(Array.from(session.nextPosition), [T + 1, T - 1]);
  session.dispose();
  const row1 = Int32Array.from([...ids.subarray(T, 2 * T - 2), 3]);
  const ref = model.logits(row1, [1, T - 1]);
  const V = config.vocabSize;
  assertClose(padded.subarray(V, 2 * V), ref.subarray((T - 2) * V, (T - 1) * V), 1e-5, 1e-4, 'padded row');
  model.dispose();
});

test('capacity overflow and wrong shapes are clear errors', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 14 });
  const session = new DecoderSession(model, B, 4);
  assertThrowsCode(() => scope(() => session.forward(session.embed(ids, T))), 'ERR_VALR_RANGE', /holds 4 positions/);
  assert.is(session.length, 0, 'nothing was appended');
  assertThrowsCode(() => scope(() => session.latent(Tensor.zeros([B + 1, 32]), 2, 1)), 'ERR_VALR_SHAPE', /'h0' must have shape \[2, 32\]/);
  assert.is(session.length, 0);
  session.dispose();
  model.dispose();
});

function sliceLast(h: Tensor, Bn: number, Tn: number, D: number): Tensor {
  const a = h.toArray() as Float32Array;
  return Tensor.fromArray(Float32Array.from({ length: Bn * D }, (_, i) => a[(Math.floor(i / D) * Tn + Tn - 1) * D + (i % D)]), [Bn, D]);
}

test.run();
