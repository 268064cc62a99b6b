// Training through latent segments: the batched, chunked, KV-cached forward pass
// against a plain one that recomputes the whole prefix for every latent slot (slow,
// obviously right). Same CE + lambda * REPA loss and the same gradient everywhere.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { autograd, scope, Tensor } from '../lib/index';
import * as F from '../lib/autograd/model-ops';
import { tap } from '../lib/autograd/alignment-ops';
import { splitLatentSample } from '../lib/latent/layout';
import { RepaProjector } from '../lib/latent/repa-projector';
import { latentForward } from '../lib/latent/train-forward';
import { Qwen2ForCausalLM, type DecoderConfig } from '../lib/nn/qwen2';
import { assertClose, assertScalarClose, assertThrowsCode, rng } from './helpers/check';

const tok = { latentStart: 27, latentEnd: 28, slot: 29 };
const K = 4, TAP = 1, LAMBDA = 0.5, P = 9, DM = 5;
const config: DecoderConfig = {
  vocabSize: 30, hiddenSize: 16, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 24,
  ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false, attentionBias: true, maxPositions: 64,
};
const S4 = [29, 29, 29, 29];
const samples = [
  Int32Array.from([5, 6, 27, ...S4, 28, 7, 8, 27, ...S4, 28, 9]),
  Int32Array.from([5, 27, ...S4, 28, 10, 11, 12]),
  Int32Array.from([3, 4, 6, 7, 8]),
];
const test = suite('latent training forward');

function targetsOf(ids: Int32Array): Int32Array {
  return Int32Array.from(ids, (_, t) => (t + 1 < ids.length && ids[t + 1] !== tok.slot && ids[t + 1] !== tok.latentEnd ? ids[t + 1] : -100));
}

// The obviously-right version, one sample at a time.
function plain(model: Qwen2ForCausalLM, ids: Int32Array, divisor: number) {
  const T = ids.length, D = config.hiddenSize;
  const slots = [...ids.keys()].filter((t) => ids[t] === tok.slot);
  let E = model.model.embed_tokens.forward(Int32Array.from(ids, (x) => (x === tok.slot ? 0 : x)), [T]);
  for (const p of slots) {
    const prefix = F.sliceSeq(F.reshape(E, [1, T, D]), 0, p);
    const out = model.model.forward({ embeds: prefix, shape: [1, p] });
    const h = F.reshape(F.sliceSeq(out.hidden, p - 1, 1), [1, D]);
    E = F.spliceRows(E, h, Int32Array.of(p));
  }
  const full = model.forward({ embeds: F.reshape(E, [1, T, D]), shape: [1, T], outputHiddenStates: true });
  const ce = F.crossEntropy(full.logits, targetsOf(ids), { divisor });
  const taps = slots.length ? tap(F.reshape(full.hiddenStates![TAP], [T, D]), Int32Array.from(slots), [slots.length / K, K, D]) : null;
  return { ce, taps };
}

test('chunked batched forward == plain recomputation: loss and every gradient', () => {
  const model = new Qwen2ForCausalLM(config, { seed: 21, initStd: 0.2 });
  const psi = new RepaProjector(16, 8, DM, [2, 2], [3, 3], { seed: 3 });
  const layouts = samples.map((ids) => splitLatentSample(ids, null, K, tok));
  const r = rng(4);
  const teacher = new Map<string, Float32Array>(); // (sample, segment) -> [P, DM]
  layouts.forEach((l, b) => { for (let s = 0; s < l.segments; s++) teacher.set(`${b}:${s}`, r.floats(P * DM)); });

  const params = [...model.parameters(), ...psi.parameters()];
  const grads = () => params.map((p) => (p.grad ? (p.grad.toArray() as Float32Array) : new Float32Array(p.value.size)));

  // Chunked
  const chunked = scope(() => {
    const out = latentForward(model, layouts, { K, tapLayer: TAP });
    const target = Tensor.fromArray(Float32Array.from(out.segments.flatMap((sg) => [...teacher.get(`${sg.sample}:${sg.segment}`)!])), [out.segments.length, P, DM]);
    const repa = autograd.repaCosineLoss([psi.forward(out.taps!)], [target]);
    const total = F.add(out.ce, repa, 1, LAMBDA);
    autograd.backward(total);
    return { loss: (total.value.toArray() as Float32Array)[0], order: out.segments, targets: out.ceTargets };
  });
  const gChunked = grads();
  for (const p of params) p.zeroGrad();

  // Plain: per sample, taps stacked in the chunked order.
  const plainLoss = scope(() => {
    const divisor = chunked.targets;
    const per = samples.map((ids) => plain(model, ids, divisor));
    let ce = per[0].ce;
    for (const x of per.slice(1)) ce = F.add(ce, x.ce);
    const D = config.hiddenSize;
    const rows = chunked.order.map((sg) => {
      const before = samples.slice(0, sg.sample).reduce((n, _, b) => n + layouts[b].segments, 0);
      return before + sg.segment;
    });
    const stacked = F.reshape(F.concatSeq(per.filter((x) => x.taps).map((x) => F.reshape(x.taps!, [1, x.taps!.value.shape[0] * K, D]))), [rows.length, K * D]);
    const ordered = tap(stacked, Int32Array.from(rows), [rows.length, K, D]);
    const target = Tensor.fromArray(Float32Array.from(chunked.order.flatMap((sg) => [...teacher.get(`${sg.sample}:${sg.segment}`)!])), [rows.length, P, DM]);
    const total = F.add(ce, autograd.repaCosineLoss([psi.forward(ordered)], [target]), 1, LAMBDA);
    autograd.backward(total);
    return (total.value.toArray() as Float32Array)[0];
  });
  const gPlain = grads();

  assertScalarClose(chunked.loss, plainLoss, 1e-6, 1e-5, 'loss');
  assert.equal(chunked.order, [{ sample: 0, segment: 0 }, { sample: 1, segment: 0 }, { sample: 0, segment: 1 }]);
  gChunked.forEach((g, i) => assertClose(g, gPlain[i], 1e-6, 1e-3, `grad of parameter ${i}`));
  assert.ok(gChunked.every((g) => g.some((v) => v !== 0)), 'every parameter gets a gradient');
  model.dispose();
  psi.dispose();
});

test('layout errors are clear', () => {
  assertThrowsCode(() => splitLatentSample(Int32Array.from([1, 27, 29, 29, 28]), null, 4, tok), 'ERR_VALR_ARGUMENT', /has 2 slots; K is 4/);
  assertThrowsCode(() => splitLatentSample(Int32Array.from([1, 29, 29, 29, 29, 28]), null, 4, tok), 'ERR_VALR_ARGUMENT', /do not follow <latent>/);
  assertThrowsCode(() => splitLatentSample(Int32Array.from([27, 29, 29, 29, 29, 5]), null, 4, tok), 'ERR_VALR_ARGUMENT', /not closed by <\/latent>/);
  const l = splitLatentSample(samples[0], null, K, tok);
  assert.is(l.segments, 2);
  assert.equal(Array.from(l.pieceTargets[0]), [6, 27, -100]); // <latent> is a target; the slot after it is not
  assert.equal(Array.from(l.pieceTargets[1]), [7, 8, 27, -100]); // </latent> predicts the step text
});

test.run();
