// From a chain-of-thought sample to model inputs: the CoT -> latent-interleaved rewrite.
//
//   <bos> [view i] [<image> x tokensPerImage] per image, question    (the prompt; "view i" optional)
//   per step i:  [<latent> <slot> x K </latent>]  <step> step text    (latent part only if K > 0)
//   <answer> answer <eos>
//
// This is VaLR's `v, q -> (l(1)[1:K], r(1)) ... (l(N)[1:K], r(N)) -> a` with the marker layout
// of VALR_SPEC.md: <latent> opens a segment, K continuous slots follow (placeholders whose
// input embedding the trainer replaces by the previous position's last hidden state), then
// </latent>, then the step's text. Each step is paired with its target view (step.view),
// returned as stepTargets for the vision alignment of that segment.
//
// Labels: labels[t] = ids[t] where token t is a CE target and IGNORE_INDEX (-100) elsewhere.
// Trained: <latent> (the model learns to open a segment), <step>, the step text, <answer>,
// the answer and <eos>. Not trained: <bos>, the image placeholders, the question, the slots
// and </latent> (forced at generation time). The trainer predicts labels[t+1] at position t
// (see lib/latent/layout.ts splitLatentSample, which also drops targets whose next token is a
// slot or </latent>).
import { ValrError } from '../errors';
import type { Step } from './questions';
import { specialIds, WordTokenizer } from './tokenizer';

export const IGNORE_INDEX = -100;

/** What buildSequence needs of a sample (a dataset Sample or a user sample). */
export interface CotSample {
  images: readonly string[];
  question: string;
  steps: readonly Step[];
  answer: string;
}

export interface SequenceOptions {
  /** Placeholders per image: the vision tower's patch count (16 for the tiny preset's 32x32 / 8x8 patches). */
  tokensPerImage: number;
  /** Latent slots per segment (K); 0 gives plain CoT with no latent segments (stage 1). */
  latentK: number;
  /**
   * Put the words "view i" before image i's placeholders (default false), so that a step
   * that says "in view 2" can find view 2's tokens by content, not only by position.
   */
  viewMarkers?: boolean;
}

export interface BuiltSequence {
  ids: Int32Array;
  /** ids[t] where position t is a CE target, IGNORE_INDEX elsewhere. */
  labels: Int32Array;
  /** Tokens of <bos>, image placeholders and question: generation starts at this position. */
  promptLength: number;
  /** Per latent segment, in order: the index into sample.images of its target view (empty when latentK = 0). */
  stepTargets: number[];
  /** Per step, its view, whatever latentK is. */
  stepViews: number[];
}

function arg(message: string): never {
  throw new ValrError('ERR_VALR_ARGUMENT', message);
}

function checkSample(sample: CotSample, what: string): void {
  if (sample === null || typeof sample !== 'object') arg(`${what}: sample must be an object`);
  if (!Array.isArray(sample.images)) arg(`${what}: sample.images must be an array`);
  if (typeof sample.question !== 'string') arg(`${what}: sample.question must be a string`);
  if (typeof sample.answer !== 'string') arg(`${what}: sample.answer must be a string`);
  if (!Array.isArray(sample.steps)) arg(`${what}: sample.steps must be an array`);
  sample.steps.forEach((s, i) => {
    if (s === null || typeof s !== 'object' || typeof s.text !== 'string') arg(`${what}: steps[${i}].text must be a string`);
    if (!Number.isInteger(s.view) || s.view < 0 || s.view >= sample.images.length) {
      throw new ValrError('ERR_VALR_RANGE', `${what}: steps[${i}].view ${s.view} is out of range [0, ${sample.images.length})`);
    }
  });
}

/**
 * Builds the token sequence and labels of a sample (layout above). Text is encoded with
 * allowSpecial = false, so a literal "<answer>" in a question stays plain words.
 */
export function buildSequence(sample: CotSample, tok: WordTokenizer, options: SequenceOptions): BuiltSequence {
  checkSample(sample, 'buildSequence');
  if (!(tok instanceof WordTokenizer)) arg('buildSequence: tok must be a WordTokenizer');
  if (options === null || typeof options !== 'object') arg('buildSequence: options must be { tokensPerImage, latentK }');
  const { tokensPerImage, latentK } = options;
  if (!Number.isInteger(tokensPerImage) || tokensPerImage < 0 || tokensPerImage > 65536) {
    arg(`buildSequence: tokensPerImage must be an integer in [0, 65536], got ${String(tokensPerImage)}`);
  }
  if (!Number.isInteger(latentK) || latentK < 0 || latentK > 4096) arg(`buildSequence: latentK must be an integer in [0, 4096], got ${String(latentK)}`);
  const sp = specialIds(tok);
  const ids: number[] = [];
  const labels: number[] = [];
  const push = (id: number, trained: boolean) => {
    ids.push(id);
    labels.push(trained ? id : IGNORE_INDEX);
  };
  const text = (s: string, trained: boolean) => {
    for (const id of tok.encode(s, { allowSpecial: false })) push(id, trained);
  };

  push(sp.bos, false);
  for (let i = 0; i < sample.images.length; i++) {
    if (options.viewMarkers) text(`view ${i}`, false);
    for (let k = 0; k < tokensPerImage; k++) push(sp.image, false);
  }
  text(sample.question, false);
  const promptLength = ids.length;
  const stepTargets: number[] = [];
  for (const step of sample.steps) {
    if (latentK > 0) {
      push(sp.latentStart, true);
      for (let k = 0; k < latentK; k++) push(sp.slot, false);
      push(sp.latentEnd, false);
      stepTargets.push(step.view);
    }
    push(sp.step, true);
    text(step.text, true);
  }
  push(sp.answer, true);
  text(sample.answer, true);
  push(sp.eos, true);
  return { ids: Int32Array.from(ids), labels: Int32Array.from(labels), promptLength, stepTargets, stepViews: sample.steps.map((s) => s.view) };
}

/**
 * The answer in generated ids: the tokens after the last <answer> up to the next <eos> (or
 * the end), decoded with single spaces, special tokens left out. null when there is no
 * <answer> or nothing after it.
 */
export function parseAnswer(generatedIds: ArrayLike<number>, tok: WordTokenizer): string | null {
  if (!(tok instanceof WordTokenizer)) arg('parseAnswer: tok must be a WordTokenizer');
  if (generatedIds === null || typeof generatedIds !== 'object' || typeof generatedIds.length !== 'number') arg('parseAnswer: generatedIds must be an array of ids');
  const sp = specialIds(tok);
  let start = -1;
  for (let i = generatedIds.length - 1; i >= 0; i--) {
    if (generatedIds[i] === sp.answer) {
      start = i + 1;
      break;
    }
  }
  if (start < 0) return null;
  const out: number[] = [];
  for (let i = start; i < generatedIds.length && generatedIds[i] !== sp.eos; i++) {
    const id = generatedIds[i];
    if (Number.isInteger(id) && id >= 0 && id < tok.vocabSize && !tok.isSpecial(id)) out.push(id);
  }
  const s = tok.decode(out);
  return s === '' ? null : s;
}

/** A reference answer in the form parseAnswer returns (tokenised and re-joined), for exact-match scoring. */
export function normalizeAnswer(answer: string, tok: WordTokenizer): string {
  return tok.decode(tok.encode(answer, { allowSpecial: false }));
}

/** Every text of the samples (questions, steps, answers): what a tokenizer is built from. */
export function sampleTexts(samples: readonly CotSample[]): string[] {
  const out: string[] = [];
  for (const s of samples) {
    out.push(s.question);
    for (const st of s.steps) out.push(st.text);
    out.push(s.answer);
  }
  return out;
}
