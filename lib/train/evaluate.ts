// Accuracy on held-out samples: generate from the prompt (images + question),
// greedily, with latent segments ('auto': the model opens them) or without ('off'),
// read the answer after the answer marker, and compare. Each item's token budget
// comes from its reference length, so that no answer of that length is cut.
import { noGrad } from '../autograd/function';
import { fail } from '../errors';
import { generate } from '../latent/generate';
import type { LatentTokens } from '../latent/layout';
import type { MultimodalModel } from '../nn/mllm';

export interface EvalItem {
  prompt: Int32Array; // ids up to the end of the question
  images: string[];
  answer: string;
  family: string;
  numViews: number;
  /** tokens of the reference chain of thought + answer + eos, latent markers excluded */
  referenceTokens?: number;
}

export interface Tally {
  correct: number;
  total: number;
  accuracy: number;
}

export interface EvalResult extends Tally {
  byFamily: Record<string, Tally>;
  byViews: Record<string, Tally>;
  latentSegmentsPerSample: number;
  /** answers that ran out of tokens (or cache) before <eos> */
  truncated: number;
  predictions: { answer: string | null; expected: string; tokens: number; truncated: boolean }[];
}

export interface EvalOptions {
  latents: 'auto' | 'force' | 'off';
  K: number;
  tokens: LatentTokens & { eos: number; answer: number; step: number; image: number };
  image: (id: string) => Float32Array;
  parseAnswer: (ids: Int32Array) => string | null;
  batchSize?: number;
  /** one text-token budget for every item (default: generationBudget of each item's reference) */
  maxNewTokens?: number;
  /** reasoning-length control at test time */
  maxReasoningSteps?: number;
}

function tally(items: boolean[]): Tally {
  const correct = items.filter(Boolean).length;
  return { correct, total: items.length, accuracy: items.length ? correct / items.length : 0 };
}

/**
 * Text tokens an item may generate (latent markers are free). Twice the reference
 * length plus 16: an answer of the reference length always fits, with room for a
 * model that reasons longer, and short references still get a few spare steps.
 * Without a reference length: 256.
 */
export function generationBudget(referenceTokens?: number): number {
  if (referenceTokens === undefined) return 256;
  if (!Number.isInteger(referenceTokens) || referenceTokens < 0) fail('ERR_VALR_ARGUMENT', `referenceTokens must be a non-negative integer, got ${referenceTokens}`);
  return 2 * referenceTokens + 16;
}

export async function evaluate(model: MultimodalModel, items: readonly EvalItem[], o: EvalOptions): Promise<EvalResult> {
  const bs = o.batchSize ?? 16;
  const predictions: EvalResult['predictions'] = [];
  let segments = 0, truncated = 0;
  for (let i = 0; i < items.length; i += bs) {
    const batch = items.slice(i, i + bs);
    const imageIds = batch.flatMap((b) => b.images);
    const size = 3 * model.config.vision.imageSize ** 2;
    const images = new Float32Array(imageIds.length * size);
    imageIds.forEach((id, k) => images.set(o.image(id), k * size));
    const res = await generate(model.language_model, batch.map((b) => b.prompt), {
      maxNewTokens: batch.map((b) => o.maxNewTokens ?? generationBudget(b.referenceTokens)),
      stopTokens: [o.tokens.eos],
      latent: o.latents === 'off' && o.K === 0 ? undefined : { K: o.K, tokens: o.tokens, policy: o.latents, stepToken: o.tokens.step },
      maxReasoningSteps: o.maxReasoningSteps,
      answerToken: o.tokens.answer,
      embedPrompt: (ids, shape) => noGrad(() => model.embed({ ids, shape, images, numImages: imageIds.length }).value),
    });
    res.forEach((r, k) => {
      segments += r.segments;
      const cut = r.reason !== 'stop'; // <eos> is the only stop token
      if (cut) truncated++;
      predictions.push({ answer: o.parseAnswer(r.tokens), expected: batch[k].answer, tokens: r.tokens.length, truncated: cut });
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const ok = predictions.map((p) => p.answer === p.expected);
  const group = (key: (it: EvalItem) => string) => {
    const out: Record<string, Tally> = {};
    const keys = [...new Set(items.map(key))].sort();
    for (const k of keys) out[k] = tally(items.map((it, i) => (key(it) === k ? ok[i] : null)).filter((x): x is boolean => x !== null));
    return out;
  };
  return {
    ...tally(ok),
    byFamily: group((it) => it.family),
    byViews: group((it) => String(it.numViews)),
    latentSegmentsPerSample: items.length ? segments / items.length : 0,
    truncated,
    predictions,
  };
}
