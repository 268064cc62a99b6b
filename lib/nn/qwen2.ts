// A Qwen2-compatible decoder (also Llama-shaped: attention bias optional). Field
// names mirror transformers' Qwen2ForCausalLM so checkpoints load by name.
import * as F from '../autograd/model-ops';
import { noGrad, Variable } from '../autograd/function';
import { fail } from '../errors';
import { adopt, keep, scope, type Device } from '../tensor';
import { Embedding, Linear, RMSNorm, type InitOptions } from './layers';
import { Initializer, Module } from './module';

export interface DecoderConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean; // q/k/v projections (Qwen2: true)
  maxPositions: number;
}

export function checkDecoderConfig(c: DecoderConfig): void {
  for (const k of ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'intermediateSize', 'maxPositions'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) fail('ERR_VALR_ARGUMENT', `config.${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.hiddenSize % c.numHeads) fail('ERR_VALR_ARGUMENT', `hiddenSize ${c.hiddenSize} is not a multiple of numHeads ${c.numHeads}`);
  if (c.numHeads % c.numKvHeads) fail('ERR_VALR_ARGUMENT', `numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}`);
  if (!(c.ropeTheta > 0) || !(c.rmsNormEps > 0)) fail('ERR_VALR_ARGUMENT', 'ropeTheta and rmsNormEps must be positive');
}

/**
 * Keys and values of earlier positions, per layer, as chunks concatenated on use.
 * The cache owns its tensors (they outlive the scope() of the step that made them):
 * dispose() it when done. In training, gradients flow through the cached chunks.
 */
export class KVCache {
  readonly keys: Variable[][];
  readonly values: Variable[][];
  length = 0;
  constructor(numLayers: number) {
    this.keys = Array.from({ length: numLayers }, () => []);
    this.values = Array.from({ length: numLayers }, () => []);
  }
  append(layer: number, k: Variable, v: Variable): void {
    keep(k.value);
    keep(v.value);
    this.keys[layer].push(k);
    this.values[layer].push(v);
  }
  /** Hands the cached tensors to the enclosing scope(), for when a backward pass still reads them. */
  releaseToScope(): void {
    for (const list of [...this.keys, ...this.values]) {
      for (const x of list) adopt(x.value);
      list.length = 0;
    }
    this.length = 0;
  }

  dispose(): void {
    for (const list of [...this.keys, ...this.values]) {
      for (const x of list) x.value.dispose();
      list.length = 0;
    }
    this.length = 0;
  }
}

export interface DecoderInput {
  /** token ids [B*T] (or embeds) */
  ids?: Int32Array;
  /** input embeddings [B, T, D] instead of ids (latent steps, spliced image tokens) */
  embeds?: Variable;
  shape: readonly [number, number]; // [B, T]
  /** absolute positions [B*T]; default cache.length + t */
  positions?: Int32Array;
  /** [B, cacheLength + T], 1 = attend; default all */
  keyMask?: Int32Array | null;
  cache?: KVCache;
  /** keep every layer's output (hidden_states[0] = embeddings, [L] = after the final norm) */
  outputHiddenStates?: boolean;
}

export interface DecoderOutput {
  /** post-final-norm hidden states [B, T, D] (what feeds the LM head) */
  hidden: Variable;
  hiddenStates?: Variable[];
}

class Qwen2Attention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  constructor(readonly c: DecoderConfig, o: InitOptions) {
    super();
    const dh = c.hiddenSize / c.numHeads;
    this.q_proj = new Linear(c.hiddenSize, c.numHeads * dh, c.attentionBias, o);
    this.k_proj = new Linear(c.hiddenSize, c.numKvHeads * dh, c.attentionBias, o);
    this.v_proj = new Linear(c.hiddenSize, c.numKvHeads * dh, c.attentionBias, o);
    this.o_proj = new Linear(c.numHeads * dh, c.hiddenSize, false, o);
  }
  forward(x: Variable, positions: Int32Array, keyMask: Int32Array | null, cache: KVCache | undefined, layer: number): Variable {
    const [B, T] = x.value.shape;
    const { numHeads: H, numKvHeads: Hkv, hiddenSize, ropeTheta } = this.c;
    const dh = hiddenSize / H;
    const q = F.rope(F.reshape(this.q_proj.forward(x), [B, T, H, dh]), positions, ropeTheta);
    const k = F.rope(F.reshape(this.k_proj.forward(x), [B, T, Hkv, dh]), positions, ropeTheta);
    const v = F.reshape(this.v_proj.forward(x), [B, T, Hkv, dh]);
    let kAll = k, vAll = v;
    if (cache) {
      kAll = F.concatSeq([...cache.keys[layer], k]);
      vAll = F.concatSeq([...cache.values[layer], v]);
      cache.append(layer, k, v);
    }
    const out = F.attention(q, kAll, vAll, { keyMask, causal: true });
    return this.o_proj.forward(F.reshape(out, [B, T, H * dh]));
  }
}

class Qwen2MLP extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  constructor(c: DecoderConfig, o: InitOptions) {
    super();
    this.gate_proj = new Linear(c.hiddenSize, c.intermediateSize, false, o);
    this.up_proj = new Linear(c.hiddenSize, c.intermediateSize, false, o);
    this.down_proj = new Linear(c.intermediateSize, c.hiddenSize, false, o);
  }
  forward(x: Variable): Variable {
    return this.down_proj.forward(F.swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
  }
}

class Qwen2DecoderLayer extends Module {
  self_attn: Qwen2Attention;
  mlp: Qwen2MLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;
  constructor(c: DecoderConfig, o: InitOptions) {
    super();
    this.self_attn = new Qwen2Attention(c, o);
    this.mlp = new Qwen2MLP(c, o);
    this.input_layernorm = new RMSNorm(c.hiddenSize, c.rmsNormEps, o);
    this.post_attention_layernorm = new RMSNorm(c.hiddenSize, c.rmsNormEps, o);
  }
  forward(x: Variable, positions: Int32Array, keyMask: Int32Array | null, cache: KVCache | undefined, layer: number): Variable {
    const h = F.add(x, this.self_attn.forward(this.input_layernorm.forward(x), positions, keyMask, cache, layer));
    return F.add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

export class Qwen2Model extends Module {
  embed_tokens: Embedding;
  layers: Qwen2DecoderLayer[];
  norm: RMSNorm;
  constructor(readonly config: DecoderConfig, o: InitOptions) {
    super();
    this.embed_tokens = new Embedding(config.vocabSize, config.hiddenSize, o);
    this.layers = Array.from({ length: config.numLayers }, () => new Qwen2DecoderLayer(config, o));
    this.norm = new RMSNorm(config.hiddenSize, config.rmsNormEps, o);
  }

  forward(input: DecoderInput): DecoderOutput {
    const [B, T] = input.shape;
    const past = input.cache?.length ?? 0;
    let x: Variable;
    if (input.embeds) {
      const s = input.embeds.value.shape;
      if (s.length !== 3 || s[0] !== B || s[1] !== T || s[2] !== this.config.hiddenSize) {
        fail('ERR_VALR_SHAPE', `embeds must be [${B}, ${T}, ${this.config.hiddenSize}], got [${s.join(', ')}]`);
      }
      x = input.embeds;
    } else if (input.ids) {
      if (input.ids.length !== B * T) fail('ERR_VALR_SHAPE', `ids must have B*T = ${B * T} entries, got ${input.ids.length}`);
      x = this.embed_tokens.forward(input.ids, [B, T]);
    } else {
      return fail('ERR_VALR_ARGUMENT', 'forward needs ids or embeds');
    }
    const positions = input.positions ?? Int32Array.from({ length: B * T }, (_, i) => past + (i % T));
    if (positions.length !== B * T) fail('ERR_VALR_SHAPE', `positions must have B*T = ${B * T} entries, got ${positions.length}`);
    const keyMask = input.keyMask ?? null;
    if (keyMask && keyMask.length !== B * (past + T)) {
      fail('ERR_VALR_SHAPE', `keyMask must have B*(cache + T) = ${B * (past + T)} entries, got ${keyMask.length}`);
    }
    const states: Variable[] = [];
    this.layers.forEach((layer, i) => {
      if (input.outputHiddenStates) states.push(x);
      x = layer.forward(x, positions, keyMask, input.cache, i);
    });
    if (input.cache) input.cache.length += T;
    const hidden = this.norm.forward(x);
    if (input.outputHiddenStates) states.push(hidden);
    return { hidden, hiddenStates: input.outputHiddenStates ? states : undefined };
  }
}

export class Qwen2ForCausalLM extends Module {
  model: Qwen2Model;
  lm_head: Linear | null;
  constructor(readonly config: DecoderConfig, options: { seed?: number; device?: Device; initStd?: number } = {}) {
    super();
    checkDecoderConfig(config);
    const o: InitOptions = { init: new Initializer(options.seed ?? 0), device: options.device ?? 'cpu', std: options.initStd };
    this.model = new Qwen2Model(config, o);
    this.lm_head = config.tieWordEmbeddings ? null : new Linear(config.hiddenSize, config.vocabSize, false, o);
  }

  get device(): Device {
    return this.model.embed_tokens.weight.value.device;
  }

  /** LM head over hidden [B, T, D] -> logits [B, T, V]. */
  head(hidden: Variable): Variable {
    return F.linear(hidden, this.lm_head ? this.lm_head.weight : this.model.embed_tokens.weight);
  }

  forward(input: DecoderInput): DecoderOutput & { logits: Variable } {
    const out = this.model.forward(input);
    return { ...out, logits: this.head(out.hidden) };
  }

  /** logits [B, T, vocab] of ids [B, T] (no gradients). */
  logits(ids: Int32Array, shape: readonly [number, number], keyMask?: Int32Array | null): Float32Array {
    return noGrad(() => scope(() => this.forward({ ids, shape, keyMask }).logits.value.toArray() as Float32Array));
  }

  /**
   * Causal-LM loss as transformers computes it: position t predicts labels[t + 1];
   * labels -100 (and the last position) are ignored; mean over counted tokens.
   */
  loss(ids: Int32Array, shape: readonly [number, number], labels: Int32Array, keyMask?: Int32Array | null): { loss: Variable; logits: Variable } {
    const [B, T] = shape;
    const targets = new Int32Array(B * T).fill(-100);
    for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) targets[b * T + t] = labels[b * T + t + 1];
    const { logits } = this.forward({ ids, shape, keyMask });
    return { loss: F.crossEntropy(logits, targets), logits };
  }
}

