// The training forward pass through latent segments, batched. Samples advance in
// lockstep, stage by stage: text piece s of every sample (right-padded, padding
// masked and given no position), then latent segment s: K decoder steps whose input
// is each sample's previous post-final-norm hidden state. The KV cache carries the
// context; gradients flow through the whole feedback chain (nothing is detached).
// Run it inside scope(): the cache and activations are freed when the step's scope ends.
import * as F from '../autograd/model-ops';
import { tap } from '../autograd/alignment-ops';
import type { Variable } from '../autograd/function';
import { fail } from '../errors';
import { KVCache, type Qwen2ForCausalLM } from '../nn/qwen2';
import type { SampleLayout } from './layout';

export interface LatentForwardOptions {
  K: number;
  /** hidden_states index tapped at the slots (0 = embeddings, numLayers = after the final norm) */
  tapLayer: number;
  /** input embeddings [B, L, D] for a text stage instead of token embeddings (image splicing) */
  embedStage?: (stage: number, ids: Int32Array, shape: readonly [number, number]) => Variable | undefined;
}

export interface LatentForwardResult {
  /** mean cross-entropy over every counted target of the batch: a [1] Variable */
  ce: Variable;
  ceTargets: number;
  /** [S, K, D] tapped slot features, S = all segments of the batch in (stage, sample) order */
  taps: Variable | null;
  /** which (sample, segment) each of the S rows of taps is */
  segments: { sample: number; segment: number }[];
}

export function latentForward(model: Qwen2ForCausalLM, samples: readonly SampleLayout[], o: LatentForwardOptions): LatentForwardResult {
  const B = samples.length;
  if (B === 0) fail('ERR_VALR_ARGUMENT', 'latentForward needs at least one sample');
  const D = model.config.hiddenSize;
  if (!Number.isInteger(o.tapLayer) || o.tapLayer < 0 || o.tapLayer > model.config.numLayers) {
    fail('ERR_VALR_ARGUMENT', `tapLayer must be in [0, ${model.config.numLayers}], got ${o.tapLayer}`);
  }
  const stages = Math.max(...samples.map((s) => s.segments));
  const cache = new KVCache(model.config.numLayers);
  const nextPos = new Int32Array(B);
  const mask: number[][] = Array.from({ length: B }, () => []);
  const maskArray = () => Int32Array.from(mask.flat());
  const totalTargets = samples.reduce((n, s) => n + s.pieceTargets.reduce((m, t) => m + t.filter((x) => x !== -100).length, 0), 0);
  const divisor = Math.max(totalTargets, 1);
  let ce: Variable | null = null;
  const tapParts: Variable[] = [];
  const segments: { sample: number; segment: number }[] = [];

  try {
    for (let s = 0; s <= stages; s++) {
      // ---- text piece s of every sample
      const lens = samples.map((smp) => smp.pieces[s]?.length ?? 0);
      const L = Math.max(...lens);
      let hidden: Variable | null = null;
      if (L > 0) {
        const ids = new Int32Array(B * L), targets = new Int32Array(B * L).fill(-100), positions = new Int32Array(B * L);
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < L; t++) {
            const real = t < lens[b];
            if (real) {
              ids[b * L + t] = samples[b].pieces[s][t];
              targets[b * L + t] = samples[b].pieceTargets[s][t];
            }
            positions[b * L + t] = nextPos[b];
            if (real) nextPos[b]++;
            mask[b].push(real ? 1 : 0);
          }
        }
        const embeds = o.embedStage?.(s, ids, [B, L]);
        const out = model.forward({ ids: embeds ? undefined : ids, embeds, shape: [B, L], positions, keyMask: maskArray(), cache });
        hidden = out.hidden;
        if (targets.some((t) => t !== -100)) {
          const part = F.crossEntropy(out.logits, targets, { divisor });
          ce = ce ? F.add(ce, part) : part;
        }
      }
      if (s === stages) break;

      // ---- latent segment s of the samples that have one
      const active = samples.map((smp) => smp.segments > s);
      if (!hidden) fail('ERR_VALR_ARGUMENT', `latent segment ${s} has no text before it (expected <latent>)`);
      // Slot 1's input: the hidden state at each sample's last real position (its <latent>).
      const rows = Int32Array.from({ length: B }, (_, b) => b * L + Math.max(lens[b] - 1, 0));
      let h = tap(F.reshape(hidden, [B * L, D]), rows, [B, 1, D]);
      const steps: Variable[] = [];
      for (let j = 0; j < o.K; j++) {
        const positions = new Int32Array(B);
        for (let b = 0; b < B; b++) {
          positions[b] = nextPos[b];
          if (active[b]) nextPos[b]++;
          mask[b].push(active[b] ? 1 : 0);
        }
        const out = model.model.forward({ embeds: h, shape: [B, 1], positions, keyMask: maskArray(), cache, outputHiddenStates: true });
        steps.push(out.hiddenStates![o.tapLayer]);
        h = out.hidden;
      }
      // [B, K, D] -> the active samples' rows [S_s, K, D]
      const all = F.reshape(F.concatSeq(steps), [B, o.K * D]);
      const activeRows = Int32Array.from(active.flatMap((a, b) => (a ? [b] : [])));
      tapParts.push(tap(all, activeRows, [1, activeRows.length * o.K, D]));
      activeRows.forEach((b) => segments.push({ sample: b, segment: s }));
    }
  } finally {
    cache.releaseToScope(); // backward may still read them; the training step's scope frees them
  }
  if (!ce) fail('ERR_VALR_ARGUMENT', 'the batch has no cross-entropy target');
  const taps = tapParts.length ? F.reshape(F.concatSeq(tapParts), [segments.length, o.K, D]) : null;
  return { ce, ceTargets: totalTargets, taps, segments };
}
