// An inference session over a Qwen2ForCausalLM: a contiguous KV cache
// [B, capacity, kvHeads, headDim] per layer, each row's next position and key mask,
// and the native engine that runs new positions (prefill, decode) or a whole latent
// segment without returning to JavaScript between steps.
import { fail } from '../errors';
import { native } from '../native';
import type { EngineConfig, NativeTensor } from '../native/binding';
import { tapGather } from '../ops/alignment';
import { keep, Tensor } from '../tensor';
import type { Qwen2ForCausalLM } from '../nn/qwen2';

export class DecoderSession {
  readonly batch: number;
  readonly capacity: number;
  readonly config: EngineConfig;
  /** [B * capacity]: 1 where a cached position may be attended */
  readonly keyMask: Int32Array;
  /** [B]: the position (RoPE index) the next token of each row gets */
  readonly nextPosition: Int32Array;
  length = 0;
  readonly #model: Qwen2ForCausalLM;
  readonly #cacheK: Tensor[];
  readonly #cacheV: Tensor[];

  constructor(model: Qwen2ForCausalLM, batch: number, capacity: number) {
    const c = model.config;
    if (!Number.isInteger(batch) || batch < 1) fail('ERR_VALR_ARGUMENT', `batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(capacity) || capacity < 1) fail('ERR_VALR_ARGUMENT', `capacity must be a positive integer, got ${capacity}`);
    this.#model = model;
    this.batch = batch;
    this.capacity = capacity;
    this.config = {
      hidden: c.hiddenSize, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.hiddenSize / c.numHeads,
      intermediate: c.intermediateSize, vocab: c.vocabSize, ropeTheta: c.ropeTheta, eps: c.rmsNormEps,
    };
    const shape = [batch, capacity, c.numKvHeads, c.hiddenSize / c.numHeads];
    const device = model.device;
    this.#cacheK = Array.from({ length: c.numLayers }, () => keep(Tensor.zeros(shape, { device })));
    this.#cacheV = Array.from({ length: c.numLayers }, () => keep(Tensor.zeros(shape, { device })));
    this.keyMask = new Int32Array(batch * capacity);
    this.nextPosition = new Int32Array(batch);
  }

  get device() {
    return this.#model.device;
  }

  // The flat weight list the native engine reads (12 per layer, final norm, LM head);
  // read at every call so that training updates are seen.
  #weights(): (NativeTensor | null)[] {
    const m = this.#model;
    const out: (NativeTensor | null)[] = [];
    for (const l of m.model.layers) {
      const a = l.self_attn;
      out.push(
        a.q_proj.weight.value.native, a.q_proj.bias?.value.native ?? null,
        a.k_proj.weight.value.native, a.k_proj.bias?.value.native ?? null,
        a.v_proj.weight.value.native, a.v_proj.bias?.value.native ?? null,
        a.o_proj.weight.value.native,
        l.mlp.gate_proj.weight.value.native, l.mlp.up_proj.weight.value.native, l.mlp.down_proj.weight.value.native,
        l.input_layernorm.weight.value.native, l.post_attention_layernorm.weight.value.native,
      );
    }
    out.push(m.model.norm.weight.value.native, (m.lm_head ? m.lm_head.weight : m.model.embed_tokens.weight).value.native);
    return out;
  }

  /** Token embeddings [B, T, D] of ids [B*T]. */
  embed(ids: Int32Array, T: number): Tensor {
    const flat = tapGather(this.#model.model.embed_tokens.weight.value, ids);
    const out = flat.reshape([this.batch, T, this.config.hidden]);
    flat.dispose();
    return out;
  }

  // Marks T new positions (mask [B*T], 1 = real token) and returns their RoPE positions.
  #advance(T: number, mask?: Int32Array): Int32Array {
    if (this.length + T > this.capacity) {
      fail('ERR_VALR_RANGE', `the session holds ${this.capacity} positions; ${this.length} used + ${T} new do not fit`);
    }
    if (mask && mask.length !== this.batch * T) fail('ERR_VALR_SHAPE', `mask must have B*T = ${this.batch * T} entries, got ${mask.length}`);
    const positions = new Int32Array(this.batch * T);
    for (let b = 0; b < this.batch; b++) {
      for (let t = 0; t < T; t++) {
        const real = mask ? mask[b * T + t] !== 0 : true;
        this.keyMask[b * this.capacity + this.length + t] = real ? 1 : 0;
        positions[b * T + t] = this.nextPosition[b];
        if (real) this.nextPosition[b]++;
      }
    }
    return positions;
  }

  /**
   * Runs x [B, T, D] (input embeddings) through the decoder, appending T positions.
   * mask [B*T]: 0 marks padding (never attended later, no position used).
   * Returns the post-final-norm hidden [B, T, D], the tap (hidden_states[tapLayer]) and
   * the logits of each row's last position [B, vocab].
   */
  forward(x: Tensor, options: { mask?: Int32Array; tapLayer?: number; logits?: boolean } = {}) {
    const T = x.shape[1];
    const start = this.length;
    const positions = this.#advance(T, options.mask);
    try {
      const r = native().decoderForward(
        this.#weights(), this.config, this.#cacheK.map((t) => t.native), this.#cacheV.map((t) => t.native), start,
        this.keyMask, x.native, positions, options.tapLayer ?? -1, !!options.logits,
      );
      this.length += T;
      return {
        hidden: new Tensor(r.hidden),
        tap: r.tap ? new Tensor(r.tap) : null,
        logits: r.logits ? new Tensor(r.logits) : null,
      };
    } catch (e) {
      this.#rollback(start, T);
      throw e;
    }
  }

  /**
   * One fused latent segment: K steps from h0 [B, D] (the hidden state at `<latent>`),
   * each step's hidden fed back as the next input. Returns the taps [B, K, D] at
   * tapLayer and the last step's hidden [B, D]. activeRows: rows that take the
   * segment (default all); the others' steps are masked out.
   */
  latent(h0: Tensor, K: number, tapLayer: number, activeRows?: ArrayLike<boolean>) {
    const start = this.length;
    const startPositions = Int32Array.from(this.nextPosition);
    // Rows not in latent mode take masked steps: attended by nobody, no position used.
    const mask = activeRows ? Int32Array.from({ length: this.batch * K }, (_, i) => (activeRows[Math.floor(i / K)] ? 1 : 0)) : undefined;
    this.#advance(K, mask);
    try {
      const r = native().latentSegment(
        this.#weights(), this.config, this.#cacheK.map((t) => t.native), this.#cacheV.map((t) => t.native), start,
        this.keyMask, h0.native, K, startPositions, tapLayer,
      );
      this.length += K;
      return { taps: new Tensor(r.taps), hidden: new Tensor(r.hidden) };
    } catch (e) {
      this.#rollback(start, K);
      throw e;
    }
  }

  #rollback(start: number, T: number): void {
    for (let b = 0; b < this.batch; b++) {
      for (let t = 0; t < T; t++) {
        if (this.keyMask[b * this.capacity + start + t]) this.nextPosition[b]--;
        this.keyMask[b * this.capacity + start + t] = 0;
      }
    }
  }

  dispose(): void {
    for (const t of [...this.#cacheK, ...this.#cacheV]) t.dispose();
  }
}
