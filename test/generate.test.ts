// Generation: greedy decoding with latent segments against a plain reference that
// recomputes the whole sequence at every step (feeding slot hidden states back by
// hand), policies, batching with different prompt lengths, sampling, caps, streaming,
// and on bigram models with a known greedy path: the 'force' layout and token budgets
// that count text only.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { autograd, scope, Tensor } from '../lib/index';
import { generate, generateStream } from '../lib/latent/generate';
import type { LatentTokens } from '../lib/latent/layout';
import { Qwen2ForCausalLM, type DecoderConfig } from '../lib/nn/qwen2';

const config: DecoderConfig = {
  vocabSize: 24, hiddenSize: 16, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 24,
  ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false, attentionBias: true, maxPositions: 256,
};
const K = 3;
const test = suite('generation');
const model = new Qwen2ForCausalLM(config, { seed: 31, initStd: 0.3 });
const prompts = [Int32Array.from([1, 2, 3, 4, 5]), Int32Array.from([6, 7])];

// Plain greedy reference: full forward over the embedding sequence at every step.
function plainGreedy(prompt: Int32Array, n: number, tok: LatentTokens | null, policy: 'auto' | 'off' | 'force', stepToken?: number) {
  return autograd.noGrad(() => scope(() => {
    const D = config.hiddenSize;
    const emb = model.model.embed_tokens.weight.value.toArray() as Float32Array;
    const seq: Float32Array[] = [...prompt].map((t) => emb.slice(t * D, (t + 1) * D));
    const out: number[] = [];
    const last = () => {
      const x = new autograd.Variable(Tensor.fromArray(Float32Array.from(seq.flatMap((r) => [...r])), [1, seq.length, D]));
      const r = model.forward({ embeds: x, shape: [1, seq.length] });
      const h = r.hidden.value.toArray() as Float32Array, l = r.logits.value.toArray() as Float32Array;
      return { h: h.slice((seq.length - 1) * D), l: l.slice((seq.length - 1) * config.vocabSize) };
    };
    const push = (t: number) => { out.push(t); seq.push(emb.slice(t * D, (t + 1) * D)); };
    let pending: number | null = null;
    while (out.length < n) {
      let t: number;
      if (pending !== null) { t = pending; pending = null; } else {
        const l = last().l;
        if (tok) { l[tok.slot] = -Infinity; l[tok.latentEnd] = -Infinity; if (policy === 'off') l[tok.latentStart] = -Infinity; }
        t = l.indexOf(Math.max(...l));
        if (tok && policy === 'force' && t === stepToken && out[out.length - 1] !== tok.latentEnd) { pending = t; t = tok.latentStart; }
      }
      push(t);
      if (tok && t === tok.latentStart) {
        for (let j = 0; j < K; j++) seq.push(last().h); // slot j's input: the previous hidden
        push(tok.latentEnd);
      }
    }
    return out;
  }));
}

// A bigram model: attention and MLP outputs are zeroed, so the logits depend only on
// the current input; token t embeds as the unit vector e_(t mod D) and the LM head
// scores next[t][0] highest, next[t][1] second, every other token 0.
function bigram(next: Record<number, number[]>): Qwen2ForCausalLM {
  const m = new Qwen2ForCausalLM(config, { seed: 3 });
  const D = config.hiddenSize, V = config.vocabSize;
  for (const l of m.model.layers) {
    l.self_attn.o_proj.weight.value.write(new Float32Array(D * D));
    l.mlp.down_proj.weight.value.write(new Float32Array(D * config.intermediateSize));
  }
  const emb = new Float32Array(V * D), head = new Float32Array(V * D);
  for (let t = 0; t < V; t++) emb[t * D + (t % D)] = 1;
  for (const [t, order] of Object.entries(next)) order.forEach((v, rank) => { head[v * D + (Number(t) % D)] = 10 - 5 * rank; });
  m.model.embed_tokens.weight.value.write(emb);
  m.lm_head!.weight.value.write(head);
  return m;
}
// Markers for the bigram tests: <step> 20, <latent> 21, </latent> 22, <slot> 23.
const STEP = 20, lt: LatentTokens = { latentStart: 21, latentEnd: 22, slot: 23 };
const bigramPrompt = Int32Array.of(1, 2, 9);
const textCount = (ids: Int32Array) => ids.filter((t) => t !== lt.latentStart && t !== lt.latentEnd).length;

function firstGreedy(prompt: Int32Array): number {
  const l = model.logits(prompt, [1, prompt.length]);
  const row = l.slice((prompt.length - 1) * config.vocabSize);
  return row.indexOf(Math.max(...row));
}

test('greedy without latents matches the plain reference, batched with different prompt lengths', async () => {
  const res = await generate(model, prompts, { maxNewTokens: 6 });
  prompts.forEach((p, b) => assert.equal(Array.from(res[b].tokens), plainGreedy(p, 6, null, 'off'), `sample ${b}`));
  assert.is(res[0].reason, 'length');
});

test("'auto': emitting <latent> runs K fused latent steps, forces </latent>, and matches the reference", async () => {
  // Make the model's first greedy choice for prompt 0 the <latent> marker.
  const tok: LatentTokens = { latentStart: firstGreedy(prompts[0]), latentEnd: 22, slot: 23 };
  const res = await generate(model, prompts, { maxNewTokens: 8, latent: { K, tokens: tok, policy: 'auto', returnFeatures: true, tapLayer: 1 } });
  prompts.forEach((p, b) => assert.equal(Array.from(res[b].tokens), plainGreedy(p, res[b].tokens.length, tok, 'auto'), `sample ${b}`));
  assert.ok(res[0].segments >= 1, 'sample 0 opened a segment');
  assert.is(res[0].tokens[0], tok.latentStart);
  assert.is(res[0].tokens[1], tok.latentEnd, '</latent> is forced right after the segment');
  assert.is(res[0].latentFeatures[0].length, K * config.hiddenSize);
  assert.ok(res[0].latentFeatures[0].every(Number.isFinite));
});

test("'off' never opens a segment; 'force' inserts one before every step token", async () => {
  const tok: LatentTokens = { latentStart: firstGreedy(prompts[0]), latentEnd: 22, slot: 23 };
  const off = await generate(model, [prompts[0]], { maxNewTokens: 6, latent: { K, tokens: tok, policy: 'off' } });
  assert.not.ok(off[0].tokens.includes(tok.latentStart));
  assert.equal(Array.from(off[0].tokens), plainGreedy(prompts[0], 6, tok, 'off'));
  const step = firstGreedy(prompts[1]);
  const tok2: LatentTokens = { latentStart: 21, latentEnd: 22, slot: 23 };
  const forced = await generate(model, [prompts[1]], { maxNewTokens: 6, latent: { K, tokens: tok2, policy: 'force', stepToken: step } });
  assert.equal(Array.from(forced[0].tokens.slice(0, 3)), [21, 22, step], 'segment, then the step token');
  assert.equal(Array.from(forced[0].tokens), plainGreedy(prompts[1], forced[0].tokens.length, tok2, 'force', step));
});

test("'force' follows the training layout: the model opens segments itself, a bare step token gets one inserted", async () => {
  // Like a stage-2 model: <latent> at every step boundary (junk 10 second), <step> after
  // </latent>; after token 12 the step token comes without a segment.
  const m = bigram({ 9: [21, 10], 10: [21, 10], 22: [STEP], [STEP]: [11], 11: [12], 12: [STEP] });
  const latent = { K, tokens: lt, stepToken: STEP };
  const [forced] = await generate(m, [bigramPrompt], { maxNewTokens: 9, latent: { ...latent, policy: 'force' } });
  const ids = Array.from(forced.tokens);
  assert.equal(ids, [21, 22, STEP, 11, 12, 21, 22, STEP, 11, 12, 21, 22, STEP, 11, 12], 'segment, step, step text: three times');
  assert.is(ids[0], lt.latentStart, 'no tokens between the prompt and the first <latent>');
  ids.forEach((t, i) => { if (t === STEP) assert.is(ids[i - 1], lt.latentEnd, `the step at ${i} follows </latent>`); });
  assert.is(forced.segments, ids.filter((t) => t === STEP).length);
  const [auto] = await generate(m, [bigramPrompt], { maxNewTokens: 9, latent: { ...latent, policy: 'auto' } });
  assert.equal(Array.from(auto.tokens), [21, 22, STEP, 11, 12, STEP, 11, 12, STEP, 11, 12], "'auto' inserts nothing");
  const [off] = await generate(m, [bigramPrompt], { maxNewTokens: 4, latent: { ...latent, policy: 'off' } });
  assert.equal(Array.from(off.tokens), [10, 10, 10, 10], "'off' never opens a segment");
  m.dispose();
});

test('latent markers do not count against maxNewTokens; budgets can differ per prompt', async () => {
  const m = bigram({ 9: [21], 22: [STEP], [STEP]: [11], 11: [12], 12: [21] });
  const [r] = await generate(m, [bigramPrompt], { maxNewTokens: 7, latent: { K, tokens: lt, policy: 'auto' } });
  assert.equal(Array.from(r.tokens), [21, 22, STEP, 11, 12, 21, 22, STEP, 11, 12, 21, 22, STEP]);
  assert.is(textCount(r.tokens), 7);
  assert.is(r.segments, 3);
  assert.is(r.reason, 'length');
  const rows = await generate(model, prompts, { maxNewTokens: [2, 5] });
  assert.equal(rows.map((x) => x.tokens.length), [2, 5]);
  prompts.forEach((p, b) => assert.equal(Array.from(rows[b].tokens), plainGreedy(p, rows[b].tokens.length, null, 'off'), `sample ${b}`));
  await assertRejects(() => generate(model, prompts, { maxNewTokens: [2] }), /1 entries for 2 prompts/);
  m.dispose();
});

test('a model that opens segments forever gets at most maxNewTokens of them, then writes text', async () => {
  const m = bigram({ 9: [21, 10], 10: [21, 10], 22: [21, 10] });
  // Two rows opening a segment at every step: the shared cache must still hold them.
  const res = await generate(m, [bigramPrompt, Int32Array.of(10)], { maxNewTokens: 4, latent: { K, tokens: lt, policy: 'auto' } });
  for (const r of res) {
    assert.equal(Array.from(r.tokens), [21, 22, 21, 22, 21, 22, 21, 22, 10, 10, 10, 10]);
    assert.is(r.segments, 4);
    assert.is(r.reason, 'length');
  }
  m.dispose();
});

test('sampling is reproducible from a seed; top-k 1 is greedy; stop tokens end a sequence', async () => {
  const a = await generate(model, prompts, { maxNewTokens: 8, temperature: 1.2, topP: 0.9, seed: 5 });
  const b = await generate(model, prompts, { maxNewTokens: 8, temperature: 1.2, topP: 0.9, seed: 5 });
  assert.equal(a.map((r) => Array.from(r.tokens)), b.map((r) => Array.from(r.tokens)));
  const greedy = await generate(model, prompts, { maxNewTokens: 5 });
  const k1 = await generate(model, prompts, { maxNewTokens: 5, temperature: 0.7, topK: 1, seed: 9 });
  assert.equal(k1.map((r) => Array.from(r.tokens)), greedy.map((r) => Array.from(r.tokens)));
  const stopAt = greedy[0].tokens[2];
  const stopped = await generate(model, [prompts[0]], { maxNewTokens: 5, stopTokens: [stopAt] });
  assert.is(stopped[0].reason, 'stop');
  assert.is(stopped[0].tokens[stopped[0].tokens.length - 1], stopAt);
});

test('reasoning caps force the answer marker; errors are clear', async () => {
  const capped = await generate(model, [prompts[0]], { maxNewTokens: 10, maxReasoningTokens: 3, answerToken: 20, stopTokens: [20] });
  assert.is(capped[0].tokens.length, 4);
  assert.is(capped[0].tokens[3], 20);
  await assertRejects(() => generate(model, [], { maxNewTokens: 3 }), /at least one prompt/);
  await assertRejects(() => generate(model, [Int32Array.of(99)], { maxNewTokens: 3 }), /outside \[0, 24\)/);
  await assertRejects(() => generate(model, prompts, { maxNewTokens: 0 }), /maxNewTokens must be a positive integer/);
});

test('streaming yields events and leaves the event loop free', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const events: string[] = [];
  for await (const e of generateStream(model, prompts, { maxNewTokens: 12 })) events.push(e.type);
  clearInterval(timer);
  assert.is(events.filter((e) => e === 'done').length, 2);
  assert.is(events.filter((e) => e === 'token').length, 24);
  assert.ok(ticks > 0, 'timers ran during generation');
});

async function assertRejects(fn: () => Promise<unknown>, re: RegExp) {
  try {
    await fn();
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable('expected a rejection');
}

test.run();
