// Accuracy on held-out samples: generate from the prompt (images + question),
// greedily, with latent segments ('auto': the model opens them) or without ('off'),
// read the answer after the answer marker, and compare.
import { noGrad } from '../autograd/function';
import { generate } from '../latent/generate';
import type { LatentTokens } from '../latent/layout';
import type { MultimodalModel } from '../nn/mllm';

export interface EvalItem {
  prompt: Int32Array; // ids up to the end of the question
  images: string[];
  answer: string;
  family: string;
  numViews: number;
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
  predictions: { answer: string | null; expected: string; tokens: number }[];
}

export interface EvalOptions {
  latents: 'auto' | 'force' | 'off';
  K: number;
  tokens: LatentTokens & { eos: number; answer: number; step: number; image: number };
  image: (id: string) => Float32Array;
  parseAnswer: (ids: Int32Array) => string | null;
  batchSize?: number;
  maxNewTokens?: number;
  /** reasoning-length control at test time */
  maxReasoningSteps?: number;
}

function tally(items: boolean[]): Tally {
  const correct = items.filter(Boolean).length;
  return { correct, total: items.length, accuracy: items.length ? correct / items.length : 0 };
}

export async function evaluate(model: MultimodalModel, items: readonly EvalItem[], o: EvalOptions): Promise<EvalResult> {
  const bs = o.batchSize ?? 16;
  const predictions: EvalResult['predictions'] = [];
  let segments = 0;
  for (let i = 0; i < items.length; i += bs) {
    const batch = items.slice(i, i + bs);
    const imageIds = batch.flatMap((b) => b.images);
    const size = 3 * model.config.vision.imageSize ** 2;
    const images = new Float32Array(imageIds.length * size);
    imageIds.forEach((id, k) => images.set(o.image(id), k * size));
    const res = await generate(model.language_model, batch.map((b) => b.prompt), {
      maxNewTokens: o.maxNewTokens ?? 96,
      stopTokens: [o.tokens.eos],
      latent: o.latents === 'off' && o.K === 0 ? undefined : { K: o.K, tokens: o.tokens, policy: o.latents, stepToken: o.tokens.step },
      maxReasoningSteps: o.maxReasoningSteps,
      answerToken: o.tokens.answer,
      embedPrompt: (ids, shape) => noGrad(() => model.embed({ ids, shape, images, numImages: imageIds.length }).value),
    });
    res.forEach((r, k) => {
      segments += r.segments;
      predictions.push({ answer: o.parseAnswer(r.tokens), expected: batch[k].answer, tokens: r.tokens.length });
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
    predictions,
  };
}
