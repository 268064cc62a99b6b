// One training stage of the two-stage schedule.
//   stage 1: CoT SFT, cross-entropy only (the vision tower trains too: it has no
//            pretrained weights here; see config.ts)
//   stage 2: latents + CE + lambda * REPA (VaLR), or plain CoT SFT again (the vanilla
//            arm); the vision tower is frozen, the REPA projectors train at their own lr.
// Deterministic: the data order of every epoch comes from the seed, so a run resumed
// from a checkpoint reproduces the losses of an uninterrupted one.
import * as F from '../autograd/model-ops';
import { backward, type Variable } from '../autograd/function';
import { repaCosineLoss } from '../autograd/alignment-ops';
import { fail } from '../errors';
import { AdamW, clipGradNorm } from '../optim/adamw';
import { scope, Tensor } from '../tensor';
import { splitLatentSample, type LatentTokens } from '../latent/layout';
import { latentForward } from '../latent/train-forward';
import type { RepaProjector } from '../latent/repa-projector';
import type { MultimodalModel } from '../nn/mllm';
import { SeededRandom } from '../latent/sampling';
import { loadCheckpoint, readCheckpointState, saveCheckpoint } from './checkpoint';
import type { StageConfig, TrainConfig } from './config';
import type { Progress } from './progress';
import { learningRate } from './schedule';

/** A sample turned into model inputs (see lib/data/sequence.ts). */
export interface EncodedSample {
  ids: Int32Array;
  labels: Int32Array;
  /** images of the sample, in placeholder order */
  images: string[];
  /** per latent segment: the image id its REPA target comes from */
  segmentImages: string[];
}

export interface TeacherLike {
  readonly name: string;
  readonly grid: readonly [number, number];
  readonly dim: number;
  batch(imageIds: readonly string[]): Float32Array;
}

export interface StageRun {
  model: MultimodalModel;
  stage: 1 | 2;
  config: TrainConfig;
  data: EncodedSample[];
  image: (id: string) => Float32Array; // [3, S, S]
  tokens: LatentTokens;
  /** stage 2 with latents: one projector per teacher */
  projectors?: RepaProjector[];
  teachers?: TeacherLike[];
  checkpointDir?: string;
  resume?: boolean;
  checkpointEvery?: number; // optimizer steps
  progress?: Progress;
  arm?: string;
  /** polled after every step: true saves a checkpoint and stops (Ctrl-C) */
  shouldStop?: () => boolean;
}

/** optimizer steps in a row with a non-finite loss or gradient before a stage gives up */
export const MAX_BAD_STEPS = 5;

export interface StageResult {
  steps: number;
  /** steps whose update was skipped (non-finite loss or gradient) */
  skippedSteps: number;
  losses: number[];
  stopped: boolean;
}

function shuffled(n: number, seed: number): number[] {
  const r = new SeededRandom(seed);
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export async function trainStage(run: StageRun): Promise<StageResult> {
  const { model, stage, config } = run;
  const cfg: StageConfig = stage === 1 ? config.stage1 : config.stage2;
  const withLatents = stage === 2 && config.latents;
  const K = withLatents ? config.K : 0;
  const tapLayer = config.tapLayer ?? Math.max(1, Math.floor((model.config.decoder.numLayers * 12) / 28));
  const projectors = withLatents ? run.projectors ?? [] : [];
  const teachers = withLatents ? run.teachers ?? [] : [];
  if (projectors.length !== teachers.length) fail('ERR_VALR_ARGUMENT', 'one REPA projector per teacher is needed');
  if (run.data.length === 0) fail('ERR_VALR_ARGUMENT', 'no training samples');
  // a zero here would make an epoch that never ends (optimizer steps over no batches)
  for (const [name, v, min] of [['batchSize', cfg.batchSize, 1], ['gradAccumulation', cfg.gradAccumulation, 1], ['epochs', cfg.epochs, 0]] as const) {
    if (!Number.isInteger(v) || v < min) fail('ERR_VALR_ARGUMENT', `stage ${stage} ${name} must be an integer >= ${min}, got ${v}`);
  }

  // What trains in this stage.
  model.vision_tower.freeze(!(stage === 1 && config.trainVisionInStage1));
  const lmParams = [...model.language_model.parameters(), ...model.projector.parameters()];
  const visionParams = stage === 1 && config.trainVisionInStage1 ? model.vision_tower.parameters() : [];
  const psiParams = projectors.flatMap((p) => p.parameters());
  const groups = [{ params: [...lmParams, ...visionParams], lr: cfg.lr, weightDecay: cfg.weightDecay }];
  if (psiParams.length) groups.push({ params: psiParams, lr: cfg.projectorLr, weightDecay: cfg.weightDecay });
  const optimizer = new AdamW(groups);
  const named = [...model.namedParameters(), ...projectors.flatMap((p, i) => p.namedParameters(`psi.${i}.`))];

  const batchesPerEpoch = Math.ceil(run.data.length / cfg.batchSize);
  const stepsPerEpoch = Math.ceil(batchesPerEpoch / cfg.gradAccumulation);
  const totalSteps = stepsPerEpoch * cfg.epochs;
  let step = 0, epoch = 0, batchInEpoch = 0;
  if (run.resume && run.checkpointDir) {
    const st = readCheckpointState(run.checkpointDir);
    if (st && st.stage === stage) {
      loadCheckpoint(run.checkpointDir, named, optimizer);
      ({ step, epoch, batchInEpoch } = st);
      run.progress?.note(`resumed stage ${stage} at step ${step} (epoch ${epoch + 1}, batch ${batchInEpoch})`);
    }
  }

  const losses: number[] = [];
  let badSteps = 0, skippedSteps = 0;
  const started = Date.now();
  let tokens = 0;
  const save = async () => {
    if (run.checkpointDir) await saveCheckpoint(run.checkpointDir, named, optimizer, { stage, step, epoch, batchInEpoch, config });
  };
  try {
    while (epoch < cfg.epochs) {
      const order = shuffled(run.data.length, config.seed * 1000 + stage * 100 + epoch);
      while (batchInEpoch < batchesPerEpoch) {
        let stepLoss = 0, stepCe = 0, stepRepa = 0;
        const micro = Math.min(cfg.gradAccumulation, batchesPerEpoch - batchInEpoch);
        for (let a = 0; a < micro; a++, batchInEpoch++) {
          const batch = order.slice(batchInEpoch * cfg.batchSize, (batchInEpoch + 1) * cfg.batchSize).map((i) => run.data[i]);
          const r = scope(() => {
            const layouts = batch.map((e) => splitLatentSample(e.ids, e.labels, Math.max(K, 1), run.tokens));
            const imageIds = batch.flatMap((e) => e.images);
            const images = new Float32Array(imageIds.length * 3 * model.config.vision.imageSize ** 2);
            imageIds.forEach((id, i) => images.set(run.image(id), i * images.length / imageIds.length));
            const out = latentForward(model.language_model, layouts, {
              K: Math.max(K, 1),
              tapLayer,
              embedStage: (s, ids, shape) => (s === 0 ? model.embed({ ids, shape, images, numImages: imageIds.length }) : undefined),
            });
            let loss: Variable = out.ce;
            let repaValue: number | undefined;
            if (withLatents && out.taps && projectors.length) {
              const segImages = out.segments.map((sg) => batch[sg.sample].segmentImages[sg.segment]);
              const S = segImages.length;
              const targets = teachers.map((t) => Tensor.fromArray(t.batch(segImages), [S, t.grid[0] * t.grid[1], t.dim], { device: model.language_model.device }));
              const repa = repaCosineLoss(projectors.map((p) => p.forward(out.taps!)), targets);
              repaValue = (repa.value.toArray() as Float32Array)[0];
              loss = F.add(loss, repa, 1, config.lambda);
            }
            if (micro > 1) loss = F.scale(loss, 1 / micro);
            backward(loss);
            return {
              loss: (loss.value.toArray() as Float32Array)[0],
              ce: (out.ce.value.toArray() as Float32Array)[0],
              repa: repaValue,
              tokens: batch.reduce((n, e) => n + e.ids.length, 0),
            };
          });
          stepLoss += r.loss;
          stepCe += r.ce / micro;
          if (r.repa !== undefined) stepRepa += r.repa / micro;
          tokens += r.tokens;
        }
        const params = groups.flatMap((g) => g.params);
        const norm = clipGradNorm(params, cfg.maxGradNorm);
        optimizer.groups[0].lr = learningRate(cfg.lr, step, totalSteps, cfg.warmupRatio);
        if (optimizer.groups[1]) optimizer.groups[1].lr = learningRate(cfg.projectorLr, step, totalSteps, cfg.warmupRatio);
        // A non-finite loss or gradient would write NaN into every weight: skip the update,
        // and stop after a few in a row (the run has diverged; nothing more is saved).
        if (Number.isFinite(norm) && Number.isFinite(stepLoss)) {
          optimizer.update();
          badSteps = 0;
        } else {
          skippedSteps++;
          if (++badSteps >= MAX_BAD_STEPS) {
            fail('ERR_VALR_DIVERGED', `stage ${stage}${run.arm ? ` (${run.arm})` : ''} diverged: ${badSteps} optimizer steps in a row had a non-finite loss or gradient norm (last loss ${stepLoss}, gradient norm ${norm}) at step ${step + 1}; lower the learning rate (lr ${cfg.lr})`);
          }
          run.progress?.note(`stage ${stage} step ${step + 1}: non-finite loss or gradient norm, update skipped`);
        }
        for (const p of params) p.zeroGrad();
        step++;
        losses.push(stepLoss);
        const elapsed = (Date.now() - started) / 1000;
        run.progress?.step({
          stage, arm: run.arm, epoch, step, totalSteps, lr: optimizer.groups[0].lr, loss: stepLoss, ce: stepCe,
          repa: withLatents ? stepRepa : undefined, tokensPerSec: tokens / Math.max(elapsed, 1e-9), elapsedSec: elapsed,
        });
        if (run.checkpointEvery && step % run.checkpointEvery === 0) await save();
        if (run.shouldStop?.()) {
          await save();
          return { steps: step, skippedSteps, losses, stopped: true };
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      epoch++;
      batchInEpoch = 0;
    }
    await save();
    return { steps: step, skippedSteps, losses, stopped: false };
  } finally {
    optimizer.dispose();
    model.vision_tower.freeze(false);
  }
}
