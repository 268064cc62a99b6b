// Generation with latent segments. When a sequence emits <latent>, exactly K latent
// steps run through the fused native segment, then </latent> is forced and text
// decoding resumes. Policies: 'auto' (the model decides), 'force' (a segment before
// every reasoning step: the model may open it itself, and a step token emitted without
// one in front of it first inserts one), 'off' (plain CoT: <latent> is never emitted).
// Token budgets count text only: <latent>, the slots and </latent> are free, and a row
// opens at most as many segments as its token budget. Reasoning length can be capped.
// Between tokens the generator yields to the event loop.
import { fail } from '../errors';
import { scope, Tensor } from '../tensor';
import type { Qwen2ForCausalLM } from '../nn/qwen2';
import { DecoderSession } from './decoder-session';
import type { LatentTokens } from './layout';
import { sampleToken, SeededRandom, type SamplingOptions } from './sampling';

export interface GenerateOptions extends SamplingOptions {
  /** text tokens per row (latent markers not counted): one for all rows, or one per prompt */
  maxNewTokens: number | readonly number[];
  seed?: number;
  stopTokens?: number[];
  latent?: {
    K: number;
    tokens: LatentTokens;
    policy?: 'auto' | 'force' | 'off';
    /** the token that starts a reasoning step ('force' inserts a segment before it unless one is there; step caps count it) */
    stepToken?: number;
    /** hidden_states index whose features are returned per segment (default: numLayers * 12 / 28) */
    tapLayer?: number;
    returnFeatures?: boolean;
  };
  /** reasoning-length control: at most this many steps / generated text tokens before the answer */
  maxReasoningSteps?: number;
  maxReasoningTokens?: number;
  /** forced once a reasoning cap is hit (e.g. the answer marker); without it the sequence stops */
  answerToken?: number;
  /**
   * Input embeddings [B, T, D] of the left-padded prompts (ids [B*T], padding id 0),
   * e.g. with image features spliced in; default: token embeddings.
   */
  embedPrompt?: (ids: Int32Array, shape: readonly [number, number]) => Tensor;
}

export type GenerateEvent =
  | { type: 'token'; sample: number; token: number; forced: boolean }
  | { type: 'latent'; sample: number; segment: number; features?: Float32Array }
  | { type: 'done'; sample: number; reason: 'stop' | 'length' | 'capacity' };

export interface GenerateResult {
  tokens: Int32Array; // generated ids (forced markers included, slots not)
  segments: number;
  latentFeatures: Float32Array[]; // [K * D] per segment, when asked
  reason: 'stop' | 'length' | 'capacity';
}

export function defaultTapLayer(numLayers: number): number {
  return Math.max(1, Math.floor((numLayers * 12) / 28));
}

/** Streams tokens, latent segments and completions for a batch of prompts. */
export async function* generateStream(
  model: Qwen2ForCausalLM,
  prompts: readonly Int32Array[],
  o: GenerateOptions,
): AsyncGenerator<GenerateEvent> {
  const B = prompts.length;
  if (B === 0) fail('ERR_VALR_ARGUMENT', 'generate needs at least one prompt');
  const budget = typeof o.maxNewTokens === 'number' ? new Array<number>(B).fill(o.maxNewTokens) : [...o.maxNewTokens];
  if (budget.length !== B) fail('ERR_VALR_SHAPE', `maxNewTokens has ${budget.length} entries for ${B} prompts`);
  for (const n of budget) if (!Number.isInteger(n) || n < 1) fail('ERR_VALR_ARGUMENT', `maxNewTokens must be a positive integer, got ${n}`);
  if (prompts.some((p) => p.length === 0)) fail('ERR_VALR_ARGUMENT', 'every prompt needs at least one token');
  const V = model.config.vocabSize;
  for (const p of prompts) for (const id of p) if (!(id >= 0 && id < V)) fail('ERR_VALR_RANGE', `prompt token ${id} is outside [0, ${V})`);
  const lat = o.latent;
  const policy = lat?.policy ?? 'auto';
  const K = lat?.K ?? 0;
  const tapLayer = lat?.tapLayer ?? defaultTapLayer(model.config.numLayers);
  const stop = new Set(o.stopTokens ?? []);
  const maxPrompt = Math.max(...prompts.map((p) => p.length));
  // Rows share the cache length: each loop step appends one position, plus K + 1 when
  // any row opens a segment. A row takes at most `budget` text tokens and `budget`
  // segments (then <latent> is masked), so the loop ends within 2 * max(budget) steps.
  const maxBudget = Math.max(...budget);
  const capacity = Math.min(model.config.maxPositions, maxPrompt + (lat ? 2 * maxBudget * (K + 2) : maxBudget));
  const session = new DecoderSession(model, B, capacity);
  const rand = new SeededRandom(o.seed ?? 0);
  const D = model.config.hiddenSize;
  const done = new Array<boolean>(B).fill(false);
  const generated = new Array<number>(B).fill(0); // text tokens: latent markers excluded
  const lastToken = new Array<number>(B).fill(-1);
  const steps = new Array<number>(B).fill(0);
  const segmentsOf = new Array<number>(B).fill(0);
  const pendingStep = new Array<number | null>(B).fill(null); // 'force': the step token waiting behind a segment
  const capped = new Array<boolean>(B).fill(false);
  let logits: Float32Array;

  try {
    // Prefill, left-padded so that every row's last position is a real token.
    {
      const ids = new Int32Array(B * maxPrompt), mask = new Int32Array(B * maxPrompt);
      prompts.forEach((p, b) => {
        ids.set(p, b * maxPrompt + maxPrompt - p.length);
        mask.fill(1, b * maxPrompt + maxPrompt - p.length, (b + 1) * maxPrompt);
      });
      logits = scope(() => {
        const x = o.embedPrompt ? o.embedPrompt(ids, [B, maxPrompt]) : session.embed(ids, maxPrompt);
        return session.forward(x, { mask, logits: true }).logits!.toArray() as Float32Array;
      });
    }

    while (!done.every(Boolean)) {
      if (session.length + 1 + (lat ? K + 1 : 0) > capacity) {
        for (let b = 0; b < B; b++) if (!done[b]) { done[b] = true; yield { type: 'done', sample: b, reason: 'capacity' }; }
        break;
      }
      // 1. choose each live row's next token
      const chosen = new Int32Array(B);
      const forcedFlag = new Array<boolean>(B).fill(false);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        if (pendingStep[b] !== null) {
          chosen[b] = pendingStep[b]!;
          pendingStep[b] = null;
          forcedFlag[b] = true;
          continue;
        }
        const row = logits.slice(b * V, (b + 1) * V);
        if (lat) {
          row[lat.tokens.slot] = -Infinity; // slots and </latent> are only ever forced
          row[lat.tokens.latentEnd] = -Infinity;
          if (policy === 'off' || segmentsOf[b] >= budget[b]) row[lat.tokens.latentStart] = -Infinity;
        }
        let t = sampleToken(row, o, rand);
        const overSteps = o.maxReasoningSteps !== undefined && lat?.stepToken !== undefined && t === lat.stepToken && steps[b] >= o.maxReasoningSteps;
        const overTokens = o.maxReasoningTokens !== undefined && generated[b] >= o.maxReasoningTokens;
        if ((overSteps || overTokens) && !capped[b]) {
          capped[b] = true;
          if (o.answerToken === undefined) {
            done[b] = true;
            yield { type: 'done', sample: b, reason: 'length' };
            continue;
          }
          t = o.answerToken;
          forcedFlag[b] = true;
        }
        // A stage-2 model opens the segment itself; only a bare step token gets one inserted.
        if (lat && policy === 'force' && t === lat.stepToken && lastToken[b] !== lat.tokens.latentEnd && segmentsOf[b] < budget[b]) {
          pendingStep[b] = t; // the segment comes first, then the step token
          t = lat.tokens.latentStart;
          forcedFlag[b] = true;
        }
        chosen[b] = t;
      }
      const live = done.map((d) => !d);
      if (!live.some(Boolean)) break;

      // 2. feed them (finished rows take masked steps)
      const feedMask = Int32Array.from(live, (l) => (l ? 1 : 0));
      const fed = scope(() => {
        const r = session.forward(session.embed(chosen, 1), { mask: feedMask, logits: true });
        return { logits: r.logits!.toArray() as Float32Array, hidden: r.hidden.toArray() as Float32Array };
      });
      logits = fed.logits;
      for (let b = 0; b < B; b++) {
        if (!live[b]) continue;
        lastToken[b] = chosen[b];
        if (chosen[b] !== lat?.tokens.latentStart) generated[b]++;
        if (lat?.stepToken !== undefined && chosen[b] === lat.stepToken) steps[b]++;
        yield { type: 'token', sample: b, token: chosen[b], forced: forcedFlag[b] };
      }

      // 3. rows that opened a segment: K fused latent steps, then </latent> is forced
      const opened = live.map((l, b) => l && !!lat && chosen[b] === lat.tokens.latentStart);
      if (lat && opened.some(Boolean)) {
        const seg = scope(() => {
          const h0 = Tensor.fromArray(fed.hidden, [B, D], { device: session.device });
          const { taps } = session.latent(h0, K, tapLayer, opened);
          const tapArr = lat.returnFeatures ? (taps.toArray() as Float32Array) : null;
          const endIds = Int32Array.from(opened, (x) => (x ? lat.tokens.latentEnd : 0));
          const r = session.forward(session.embed(endIds, 1), { mask: Int32Array.from(opened, (x) => (x ? 1 : 0)), logits: true });
          return { taps: tapArr, logits: r.logits!.toArray() as Float32Array };
        });
        for (let b = 0; b < B; b++) {
          if (!opened[b]) continue;
          logits.set(seg.logits.subarray(b * V, (b + 1) * V), b * V);
          lastToken[b] = lat.tokens.latentEnd;
          const features = seg.taps ? seg.taps.slice(b * K * D, (b + 1) * K * D) : undefined;
          yield { type: 'latent', sample: b, segment: segmentsOf[b]++, features };
          yield { type: 'token', sample: b, token: lat.tokens.latentEnd, forced: true };
        }
      }

      // 4. finished rows
      for (let b = 0; b < B; b++) {
        if (!live[b] || done[b]) continue;
        if (stop.has(chosen[b])) {
          done[b] = true;
          yield { type: 'done', sample: b, reason: 'stop' };
        } else if (generated[b] >= budget[b]) {
          done[b] = true;
          yield { type: 'done', sample: b, reason: 'length' };
        }
      }
      await new Promise<void>((resolve) => setImmediate(resolve)); // let the event loop breathe
    }
  } finally {
    session.dispose();
  }
}

/** Generates for every prompt and returns the ids, segment count and latent features. */
export async function generate(model: Qwen2ForCausalLM, prompts: readonly Int32Array[], o: GenerateOptions): Promise<GenerateResult[]> {
  const out = prompts.map(() => ({ tokens: [] as number[], segments: 0, latentFeatures: [] as Float32Array[], reason: 'length' as GenerateResult['reason'] }));
  for await (const e of generateStream(model, prompts, o)) {
    const r = out[e.sample];
    if (e.type === 'token') r.tokens.push(e.token);
    else if (e.type === 'latent') {
      r.segments++;
      if (e.features) r.latentFeatures.push(e.features);
    } else r.reason = e.reason;
  }
  return out.map((r) => ({ ...r, tokens: Int32Array.from(r.tokens) }));
}
