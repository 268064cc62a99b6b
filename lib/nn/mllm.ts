// The multimodal model: vision tower -> projector -> image tokens spliced into the
// decoder's input at the image placeholder tokens (several images per sample for
// multi-view data, in order of appearance).
import * as F from '../autograd/model-ops';
import type { Variable } from '../autograd/function';
import { fail } from '../errors';
import type { Device } from '../tensor';
import { Module } from './module';
import { Projector } from './projector';
import { Qwen2ForCausalLM, type DecoderConfig, type DecoderOutput, type KVCache } from './qwen2';
import { patchGrid, VisionTower, type VisionConfig } from './vit';

export interface MLLMConfig {
  decoder: DecoderConfig;
  vision: VisionConfig;
  imageTokenId: number;
}

export interface MLLMInput {
  ids: Int32Array; // [B*T], each image as patchGrid^2 consecutive imageTokenId placeholders
  shape: readonly [number, number];
  images?: Float32Array; // [N, C, H, W], in the order their placeholders appear
  numImages?: number;
  keyMask?: Int32Array | null;
  positions?: Int32Array;
  cache?: KVCache;
  outputHiddenStates?: boolean;
}

export class MultimodalModel extends Module {
  vision_tower: VisionTower;
  projector: Projector;
  language_model: Qwen2ForCausalLM;
  constructor(readonly config: MLLMConfig, options: { seed?: number; device?: Device } = {}) {
    super();
    const seed = options.seed ?? 0;
    this.vision_tower = new VisionTower(config.vision, { seed: seed + 1, device: options.device });
    this.projector = new Projector(config.vision.hiddenSize, config.decoder.hiddenSize, { seed: seed + 2, device: options.device });
    this.language_model = new Qwen2ForCausalLM(config.decoder, { seed, device: options.device });
  }

  get tokensPerImage(): number {
    return patchGrid(this.config.vision) ** 2;
  }

  /** Input embeddings [B, T, D]: token embeddings with projected image features at the placeholders. */
  embed(input: MLLMInput): Variable {
    const [B, T] = input.shape;
    const D = this.config.decoder.hiddenSize;
    const placeholder: number[] = [];
    input.ids.forEach((id, i) => {
      if (id === this.config.imageTokenId) placeholder.push(i);
    });
    const n = input.numImages ?? 0;
    if (placeholder.length !== n * this.tokensPerImage) {
      fail('ERR_VALR_SHAPE', `the ids hold ${placeholder.length} image placeholders but ${n} image(s) need ${n * this.tokensPerImage}`);
    }
    const text = this.language_model.model.embed_tokens.forward(input.ids, [B * T]);
    if (n === 0) return F.reshape(text, [B, T, D]);
    const feats = this.projector.forward(this.vision_tower.forward(input.images!, n));
    const spliced = F.spliceRows(text, F.reshape(feats, [n * this.tokensPerImage, D]), Int32Array.from(placeholder));
    return F.reshape(spliced, [B, T, D]);
  }

  forward(input: MLLMInput): DecoderOutput & { logits: Variable } {
    const embeds = this.embed(input);
    const out = this.language_model.model.forward({
      embeds, shape: input.shape, keyMask: input.keyMask, positions: input.positions, cache: input.cache,
      outputHiddenStates: input.outputHiddenStates,
    });
    return { ...out, logits: this.language_model.head(out.hidden) };
  }
}
