// Single-view caption samples: "what do you see in view 0?" answered by naming every
// clearly visible object, left to right, with its size, then how many there are.
//
// Why: the reasoning steps of the multi-view questions are captions restricted to the
// objects asked about, so reading an image out loud is the skill the decoder must learn
// first. Real MLLMs learn it from caption data during their alignment pretraining; here
// stage 1 mixes in one caption sample per training view (short: one image, one step).
import { fail } from '../errors';
import type { SceneRecord } from './dataset';
import type { CotSample } from './sequence';
import { objectName, projectPoint } from './scene';

export interface CaptionSample extends CotSample {
  family: 'caption';
  numViews: 1;
}

/** The caption sample of view `view` of a scene (objects with at least minPixels pixels in it). */
export function captionSample(scene: Pick<SceneRecord, 'objects' | 'cameras' | 'images' | 'pixelCounts'>, view: number, minPixels: number): CaptionSample {
  const counts = scene.pixelCounts?.[view];
  if (!Number.isInteger(view) || !counts || !scene.cameras[view] || scene.images[view] === undefined) {
    fail('ERR_VALR_ARGUMENT', `captionSample: view must be in [0, ${scene.cameras.length}), got ${view}`);
  }
  const seen = scene.objects
    .filter((o) => (counts[o.index] ?? 0) >= minPixels)
    .map((o) => ({ o, u: projectPoint(scene.cameras[view], o.center).u }))
    .sort((a, b) => a.u - b.u || a.o.index - b.o.index)
    .map((e) => e.o);
  const list = seen.map((o) => `the ${objectName(o)}, which is ${o.size}`);
  const text = seen.length === 0 ? 'In view 0 I see no objects.' : `In view 0 I see, from left to right, ${list.join(', and ')}.`;
  return {
    family: 'caption',
    numViews: 1,
    images: [scene.images[view]],
    question: 'How many objects are there in view 0?',
    steps: [{ text, view: 0 }],
    answer: String(seen.length),
  };
}

/** One caption sample per view of every scene given. */
export function captionSamples(scenes: readonly Pick<SceneRecord, 'objects' | 'cameras' | 'images' | 'pixelCounts'>[], minPixels: number): CaptionSample[] {
  return scenes.flatMap((s) => s.images.map((_, v) => captionSample(s, v, minPixels)));
}
