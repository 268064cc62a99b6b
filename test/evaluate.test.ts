// Evaluation budgets: each item may generate twice its reference length (+16) in text
// tokens, latent markers free, so a long reference is not cut at a fixed cap; answers
// that run out of tokens are counted as truncated.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MultimodalModel } from '../lib/nn/mllm';
import { evaluate, generationBudget, type EvalItem, type EvalOptions } from '../lib/train/evaluate';
import { assertThrowsCode } from './helpers/check';

const test = suite('evaluate');
const IMAGE = 3, EOS = 2;
const model = new MultimodalModel({
  decoder: {
    vocabSize: 24, hiddenSize: 16, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 24,
    ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false, attentionBias: true, maxPositions: 1024,
  },
  vision: { imageSize: 8, patchSize: 4, channels: 3, hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 16, layerNormEps: 1e-6 },
  imageTokenId: IMAGE,
}, { seed: 4 });

// The decoder as a bigram model (attention and MLP outputs zeroed, token t embeds as
// e_(t mod D)) with a known greedy path: after 9 it opens a segment, then <step> and
// the filler 10 forever; after 11 it writes 12 and <eos>.
{
  const lm = model.language_model, c = lm.config, D = c.hiddenSize;
  for (const l of lm.model.layers) {
    l.self_attn.o_proj.weight.value.write(new Float32Array(D * D));
    l.mlp.down_proj.weight.value.write(new Float32Array(D * c.intermediateSize));
  }
  const emb = new Float32Array(c.vocabSize * D), head = new Float32Array(c.vocabSize * D);
  for (let t = 0; t < c.vocabSize; t++) emb[t * D + (t % D)] = 1;
  const next: [number, number][] = [[9, 21], [22, 20], [20, 10], [10, 10], [11, 12], [12, EOS]];
  for (const [t, v] of next) head[v * D + (t % D)] = 10;
  lm.model.embed_tokens.weight.value.write(emb);
  lm.lm_head!.weight.value.write(head);
}

const item = (last: number, referenceTokens: number | undefined, family: string): EvalItem => ({
  prompt: Int32Array.from([1, ...new Array<number>(model.tokensPerImage).fill(IMAGE), last]),
  images: ['img'], answer: 'a', family, numViews: 1, referenceTokens,
});
const options: EvalOptions = {
  latents: 'auto', K: 2,
  tokens: { latentStart: 21, latentEnd: 22, slot: 23, eos: EOS, answer: 19, step: 20, image: IMAGE },
  image: () => new Float32Array(3 * 8 * 8).fill(0.5),
  parseAnswer: () => null,
};

test('the budget rule leaves room for the whole reference and more', () => {
  for (const n of [0, 1, 40, 96, 150, 1000]) assert.ok(generationBudget(n) >= 2 * n, `reference ${n}: budget ${generationBudget(n)}`);
  assert.is(generationBudget(), 256);
  assertThrowsCode(() => generationBudget(-1), 'ERR_VALR_ARGUMENT');
});

test('a long reference is not cut at 96 tokens; latent markers are free; running out is counted', async () => {
  const long = item(9, 120, 'long'), short = item(11, 4, 'short');
  const ev = await evaluate(model, [long, short], { ...options, batchSize: 2 });
  // the long item: <latent> </latent> <step>, then filler up to its 2 * 120 + 16 text tokens
  assert.is(ev.predictions[0].tokens, 2 * 120 + 16 + 2);
  assert.ok(ev.predictions[0].truncated);
  assert.is(ev.predictions[1].tokens, 2, 'the short item stops at <eos>');
  assert.not.ok(ev.predictions[1].truncated);
  assert.is(ev.truncated, 1);
  assert.is(ev.latentSegmentsPerSample, 0.5);
  const capped = await evaluate(model, [long], { ...options, maxNewTokens: 10 });
  assert.is(capped.predictions[0].tokens, 12, 'maxNewTokens overrides the budget');
  assert.is(capped.truncated, 1);
});

test.run();
