// The training knobs, with the paper's values scaled to the tiny preset.
// Paper (VALR_SPEC.md): stage 1 CoT SFT lr 1e-5; stage 2 lr 2e-6 (LM) and 1e-5 (psi),
// lambda 0.5, K 16, AdamW, weight decay 0.01, warm-up ratio 0.03, 1 epoch, batch 128.
// The tiny model starts from random weights (no pretrained LM or vision tower), so
// its learning rates are larger and it trains for several epochs; the ratios
// between stages and between LM and projectors follow the paper.

export type TeacherKind = 'geometry' | 'appearance' | 'own' | 'precomputed';

export interface StageConfig {
  epochs: number;
  batchSize: number;
  gradAccumulation: number;
  lr: number; // language model (and, in stage 1, the vision tower and projector)
  projectorLr: number; // REPA projectors psi (stage 2)
  weightDecay: number;
  warmupRatio: number;
  maxGradNorm: number;
}

/** Stage 0: dense per-patch supervision of the vision tower and projector (lib/train/perception.ts). */
export interface PerceptionConfig {
  /** optimizer steps; 0 skips the stage */
  steps: number;
  /** images per step */
  batchSize: number;
  lr: number;
}

export interface TrainConfig {
  preset: 'tiny' | 'mini' | 'small' | 'base';
  seed: number;
  /** latent slots per segment (a perfect square: the slots form a sqrt(K) x sqrt(K) grid) */
  K: number;
  /** hidden_states index tapped at the slots; default floor(numLayers * 12 / 28) */
  tapLayer?: number;
  lambda: number;
  teachers: { kind: TeacherKind; path?: string }[];
  projectorHidden: number;
  stage1: StageConfig;
  stage2: StageConfig;
  /** stage 2 without latents (vanilla SFT arm) continues plain CoT SFT */
  latents: boolean;
  /** stage 1 trains the vision tower too (only sensible without a perception stage); stage 2 keeps it frozen */
  trainVisionInStage1: boolean;
  /** the perception stage that stands in for a pretrained vision encoder */
  perception: PerceptionConfig;
  /** "view i" before each image's tokens in the prompt */
  viewMarkers: boolean;
  /**
   * stage 1 also trains on single-view caption samples (lib/data/captions.ts), one per
   * training view up to this many per CoT sample (0: none)
   */
  captionRatio: number;
  /**
   * REPA targets standardised over the training images: 'position' subtracts each patch
   * position's mean and divides by each channel's spread (a constant prediction then scores
   * little), 'channel' uses per-channel statistics only, 'none' leaves them raw.
   */
  teacherStandardization: 'position' | 'channel' | 'none';
}

export function defaultConfig(overrides: Partial<TrainConfig> = {}): TrainConfig {
  const stage = (lr: number, epochs: number): StageConfig => ({
    epochs, batchSize: 16, gradAccumulation: 1, lr, projectorLr: lr * 5, weightDecay: 0.01, warmupRatio: 0.03, maxGradNorm: 1,
  });
  return {
    preset: 'tiny',
    seed: 0,
    K: 4,
    lambda: 0.5,
    teachers: [{ kind: 'geometry' }, { kind: 'appearance' }],
    projectorHidden: 64,
    stage1: stage(2e-3, 6),
    stage2: stage(4e-4, 3), // 1/5 of stage 1, as 2e-6 is to 1e-5
    latents: true,
    trainVisionInStage1: false,
    perception: { steps: 1500, batchSize: 32, lr: 3e-3 },
    viewMarkers: true,
    captionRatio: 1,
    teacherStandardization: 'position',
    ...overrides,
  };
}
