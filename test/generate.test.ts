// Generation: greedy decoding with latent segments against a plain reference that
// recomputes the whole sequence at every step (feeding slot hidden states back by
// hand), policies, batching with different prompt lengths, sampling, caps, streaming.
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
        if (tok) { l[tok.slot] = -Infinity; l[tok.latentEnd] = -Infinity; if (policy !== 'auto') l[tok.latentStart] = -Infinity; }
        t = l.indexOf(Math.max(...l));
        if (tok && policy === 'force' && t === stepToken) { pending = t; t = tok.latentStart; }
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
