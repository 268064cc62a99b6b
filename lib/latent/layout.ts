// The layout of a latent-interleaved sequence:
//   v, q, (<latent> [slot x K] </latent> r(i))..., a
// Slots are placeholder ids whose input embedding is replaced, during training and
// generation, by the previous position's post-final-norm hidden state.
import { fail } from '../errors';

export interface LatentTokens {
  latentStart: number; // <latent>
  latentEnd: number; // </latent>
  slot: number; // placeholder id of a latent slot
}

/** One sample split at its latent segments: text pieces around K-slot segments. */
export interface SampleLayout {
  /** pieces[i] = token ids of text piece i; pieces.length = segments + 1 */
  pieces: Int32Array[];
  /** CE targets aligned with each piece's positions (next-token ids, -100 = none) */
  pieceTargets: Int32Array[];
  /** number of latent segments */
  segments: number;
}

/**
 * Splits ids at the slot runs. Every run must be exactly K slots, directly after a
 * `<latent>` and directly before a `</latent>`. Targets are next-token labels where
 * `labels` (same length as ids; -100 = no loss) says so; positions whose next token
 * is a slot or a forced `</latent>` never carry a loss.
 */
export function splitLatentSample(ids: Int32Array, labels: Int32Array | null, K: number, tok: LatentTokens): SampleLayout {
  if (labels && labels.length !== ids.length) fail('ERR_VALR_SHAPE', `labels must match ids (${ids.length}), got ${labels.length}`);
  const pieces: Int32Array[] = [];
  const pieceTargets: Int32Array[] = [];
  let start = 0;
  let i = 0;
  const targetAt = (t: number) => {
    if (t + 1 >= ids.length) return -100;
    const next = ids[t + 1];
    if (next === tok.slot || next === tok.latentEnd) return -100;
    return labels ? labels[t + 1] : next;
  };
  while (i < ids.length) {
    if (ids[i] !== tok.slot) {
      i++;
      continue;
    }
    let j = i;
    while (j < ids.length && ids[j] === tok.slot) j++;
    if (j - i !== K) fail('ERR_VALR_ARGUMENT', `a latent segment at position ${i} has ${j - i} slots; K is ${K}`);
    if (i === 0 || ids[i - 1] !== tok.latentStart) fail('ERR_VALR_ARGUMENT', `the latent slots at position ${i} do not follow <latent>`);
    if (j >= ids.length || ids[j] !== tok.latentEnd) fail('ERR_VALR_ARGUMENT', `the latent slots at position ${i} are not closed by </latent>`);
    pieces.push(ids.slice(start, i));
    pieceTargets.push(Int32Array.from({ length: i - start }, (_, t) => targetAt(start + t)));
    start = j;
    i = j;
  }
  pieces.push(ids.slice(start));
  pieceTargets.push(Int32Array.from({ length: ids.length - start }, (_, t) => targetAt(start + t)));
  return { pieces, pieceTargets, segments: pieces.length - 1 };
}
