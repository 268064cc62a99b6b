// Dense per-patch labels of a rendered view, from the renderer's object-id map: what the
// perception stage (lib/train/perception.ts) teaches the vision tower to see, standing in
// for the pretraining a real MLLM's vision encoder has had.
//
// Each patch of a g x g grid gets:
//   kind:  colour * SHAPES.length + shape of the object covering most of its pixels, when
//          that object covers at least `minFraction` of the patch; else FLOOR_CLASS or
//          BACKGROUND_CLASS, whichever covers more (NUM_KIND_CLASSES in all);
//   size:  the size class of that object (small/medium/large), IGNORE for floor/background.
import { fail } from '../errors';
import { BACKGROUND_ID, FLOOR_ID, type RenderedView } from './render';
import { COLOURS, SHAPES, SIZES, type SceneObject } from './scene';

export const FLOOR_CLASS = COLOURS.length * SHAPES.length;
export const BACKGROUND_CLASS = FLOOR_CLASS + 1;
export const NUM_KIND_CLASSES = BACKGROUND_CLASS + 1;
export const NUM_SIZE_CLASSES = SIZES.length;
const IGNORE = -100;

export interface PatchLabels {
  /** [g*g] object kind (colour x shape) or floor / background */
  kind: Int32Array;
  /** [g*g] size class of the patch's object, -100 where there is none */
  size: Int32Array;
}

export function objectKindClass(o: Pick<SceneObject, 'colour' | 'shape'>): number {
  return COLOURS.indexOf(o.colour) * SHAPES.length + SHAPES.indexOf(o.shape);
}

export function patchLabels(view: Pick<RenderedView, 'objectId' | 'width' | 'height'>, objects: readonly SceneObject[], grid: number, minFraction = 0.1): PatchLabels {
  const { width: W, height: H } = view;
  if (!Number.isInteger(grid) || grid < 1 || W % grid || H % grid) fail('ERR_VALR_ARGUMENT', `grid must divide the ${W}x${H} view, got ${grid}`);
  const ph = H / grid, pw = W / grid;
  const kind = new Int32Array(grid * grid), size = new Int32Array(grid * grid).fill(IGNORE);
  const counts = new Map<number, number>();
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      counts.clear();
      for (let y = gy * ph; y < (gy + 1) * ph; y++) {
        for (let x = gx * pw; x < (gx + 1) * pw; x++) {
          const id = view.objectId[y * W + x];
          counts.set(id, (counts.get(id) ?? 0) + 1);
        }
      }
      let best = -1, bestCount = 0;
      for (const [id, c] of counts) if (id >= 0 && (c > bestCount || (c === bestCount && id < best))) [best, bestCount] = [id, c];
      const p = gy * grid + gx;
      if (best >= 0 && bestCount >= minFraction * ph * pw) {
        const o = objects[best];
        if (!o) fail('ERR_VALR_ARGUMENT', `the view shows object ${best}, but the scene has ${objects.length} objects`);
        kind[p] = objectKindClass(o);
        size[p] = SIZES.indexOf(o.size);
      } else {
        kind[p] = (counts.get(FLOOR_ID) ?? 0) >= (counts.get(BACKGROUND_ID) ?? 0) ? FLOOR_CLASS : BACKGROUND_CLASS;
      }
    }
  }
  return { kind, size };
}
