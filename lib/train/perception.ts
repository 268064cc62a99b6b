// The perception stage (stage 0): dense per-patch supervision of the vision tower and
// projector before any chain-of-thought training.
//
// Why: a real MLLM starts from a pretrained vision encoder. Ours starts from random
// weights, and trained on the CoT loss alone its visual pathway collapses to a constant
// (the text prior is learned long before reading the images pays off). Here the tower and
// projector learn, per patch, which object kind (colour x shape) and size it shows, from
// the renderer's object-id maps; the decoder is not involved. Stage 1 then keeps the tower
// frozen (as the paper keeps its native encoder frozen) so the features cannot collapse.
import * as F from '../autograd/model-ops';
import { backward } from '../autograd/function';
import { NUM_KIND_CLASSES, NUM_SIZE_CLASSES, patchLabels, type PatchLabels } from '../data/patch-labels';
import type { RenderedView } from '../data/render';
import type { SceneObject } from '../data/scene';
import { SeededRandom } from '../latent/sampling';
import { fail } from '../errors';
import { Linear } from '../nn/layers';
import { Initializer } from '../nn/module';
import type { MultimodalModel } from '../nn/mllm';
import { AdamW, clipGradNorm } from '../optim/adamw';
import { scope } from '../tensor';
import { learningRate } from './schedule';

export interface PerceptionBatch {
  /** [N, 3, S, S] images */
  images: Float32Array;
  n: number;
  /** [N * P] kind class per patch; [N * P] size class per patch (-100: none) */
  kind: Int32Array;
  size: Int32Array;
}

export interface PerceptionOptions {
  steps: number;
  lr: number;
  weightDecay?: number;
  warmupRatio?: number;
  seed?: number;
  /** the batch of optimizer step i (fresh renders, or views drawn from a dataset) */
  batch: (step: number) => PerceptionBatch;
  onStep?: (s: { step: number; steps: number; loss: number; kindAccuracy: number }) => void;
  shouldStop?: () => boolean;
}

export interface PerceptionResult {
  steps: number;
  losses: number[];
  /** patch accuracy of the kind head over the last 10% of steps */
  kindAccuracy: number;
}

/** Trains model.vision_tower and model.projector on per-patch kind and size labels. */
export async function trainPerception(model: MultimodalModel, o: PerceptionOptions): Promise<PerceptionResult> {
  if (!Number.isInteger(o.steps) || o.steps < 0) fail('ERR_VALR_ARGUMENT', `perception steps must be an integer >= 0, got ${o.steps}`);
  const D = model.config.decoder.hiddenSize;
  const init = { init: new Initializer(o.seed ?? 7), device: model.vision_tower.device };
  // The heads read the projector's output, so the projector is pretrained too; they are dropped afterwards.
  const kindHead = new Linear(D, NUM_KIND_CLASSES, true, init);
  const sizeHead = new Linear(D, NUM_SIZE_CLASSES, true, init);
  const params = [...model.vision_tower.parameters(), ...model.projector.parameters(), ...kindHead.parameters(), ...sizeHead.parameters()];
  model.vision_tower.freeze(false);
  model.projector.freeze(false);
  const optimizer = new AdamW([{ params, lr: o.lr, weightDecay: o.weightDecay ?? 0.01 }]);
  const losses: number[] = [];
  let hits = 0, seen = 0;
  try {
    for (let step = 0; step < o.steps; step++) {
      const b = o.batch(step);
      const r = scope(() => {
        const feats = model.projector.forward(model.vision_tower.forward(b.images, b.n));
        const rows = F.reshape(feats, [b.kind.length, D]);
        const kindLogits = kindHead.forward(rows);
        const loss = F.add(F.crossEntropy(kindLogits, b.kind), F.crossEntropy(sizeHead.forward(rows), b.size));
        backward(loss);
        let correct = 0;
        if (step >= o.steps * 0.9) {
          const l = kindLogits.value.toArray() as Float32Array;
          for (let i = 0; i < b.kind.length; i++) {
            let arg = 0;
            for (let c = 1; c < NUM_KIND_CLASSES; c++) if (l[i * NUM_KIND_CLASSES + c] > l[i * NUM_KIND_CLASSES + arg]) arg = c;
            if (arg === b.kind[i]) correct++;
          }
        }
        return { loss: (loss.value.toArray() as Float32Array)[0], correct };
      });
      if (step >= o.steps * 0.9) {
        hits += r.correct;
        seen += b.kind.length;
      }
      clipGradNorm(params, 1);
      optimizer.groups[0].lr = learningRate(o.lr, step, o.steps, o.warmupRatio ?? 0.03);
      optimizer.update();
      for (const p of params) p.zeroGrad();
      losses.push(r.loss);
      o.onStep?.({ step: step + 1, steps: o.steps, loss: r.loss, kindAccuracy: seen ? hits / seen : NaN });
      if (o.shouldStop?.()) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    optimizer.dispose();
    kindHead.dispose();
    sizeHead.dispose();
  }
  return { steps: losses.length, losses, kindAccuracy: seen ? hits / seen : NaN };
}

/**
 * Batches of rendered views with their patch labels (computed once per view), in a seeded
 * order that visits every view once per pass.
 */
export function viewPerceptionBatches(
  imageIds: readonly string[], o: { view: (id: string) => RenderedView; objects: (id: string) => readonly SceneObject[]; grid: number; batchSize: number; seed?: number },
): (step: number) => PerceptionBatch {
  if (imageIds.length === 0) fail('ERR_VALR_ARGUMENT', 'the perception stage needs at least one training view');
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) fail('ERR_VALR_ARGUMENT', `perception batchSize must be a positive integer, got ${o.batchSize}`);
  const labels = new Map<string, PatchLabels>();
  const rand = new SeededRandom(o.seed ?? 0);
  let order: number[] = [], at = 0;
  const next = () => {
    if (at >= order.length) {
      order = [...imageIds.keys()];
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rand.next() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      at = 0;
    }
    return imageIds[order[at++]];
  };
  const P = o.grid * o.grid;
  return () => {
    const n = o.batchSize;
    let images: Float32Array | null = null;
    const kind = new Int32Array(n * P), size = new Int32Array(n * P);
    for (let i = 0; i < n; i++) {
      const id = next();
      const v = o.view(id);
      images ??= new Float32Array(n * v.rgb.length);
      images.set(v.rgb, i * v.rgb.length);
      let l = labels.get(id);
      if (!l) labels.set(id, (l = patchLabels(v, o.objects(id), o.grid)));
      kind.set(l.kind, i * P);
      size.set(l.size, i * P);
    }
    return { images: images!, n, kind, size };
  };
}
