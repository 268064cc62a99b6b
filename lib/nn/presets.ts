// Model sizes. `tiny` and `mini` train in minutes on 2 CPU cores; the others are for GPUs.
import type { DecoderConfig } from './qwen2';
import type { VisionConfig } from './vit';

export interface Preset {
  decoder: Omit<DecoderConfig, 'vocabSize'>;
  vision: VisionConfig;
}

const decoder = (hiddenSize: number, numLayers: number, numHeads: number, numKvHeads: number, intermediateSize: number) => ({
  hiddenSize, numLayers, numHeads, numKvHeads, intermediateSize,
  ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: true, attentionBias: true, maxPositions: 4096,
});

export const presets: Record<'tiny' | 'mini' | 'small' | 'base', Preset> = {
  tiny: {
    decoder: decoder(64, 4, 4, 2, 128),
    vision: { imageSize: 32, patchSize: 8, channels: 3, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 128, layerNormEps: 1e-6 },
  },
  // twice tiny's width: room to copy the question's object names into the steps
  mini: {
    decoder: decoder(128, 4, 4, 2, 256),
    vision: { imageSize: 32, patchSize: 8, channels: 3, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 128, layerNormEps: 1e-6 },
  },
  small: {
    decoder: decoder(512, 12, 8, 2, 1408),
    vision: { imageSize: 128, patchSize: 16, channels: 3, hiddenSize: 384, numLayers: 6, numHeads: 6, intermediateSize: 1536, layerNormEps: 1e-6 },
  },
  base: {
    decoder: decoder(1024, 24, 16, 2, 2816),
    vision: { imageSize: 224, patchSize: 14, channels: 3, hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, layerNormEps: 1e-6 },
  },
};
