// The image a teacher sees: one rendered view of a synthetic scene. Structurally the
// same type as the renderer's (lib/data), declared here so that teachers depend on the
// shape of the data, not on the renderer's module.
import { fail } from '../errors';

/** objectId value of floor pixels. */
export const FLOOR_ID = -1;
/** objectId value of background pixels (rays that hit nothing). */
export const BACKGROUND_ID = -2;

export interface RenderedView {
  /** [3, H, W] colour in [0, 1], channel-major. */
  rgb: Float32Array;
  /** [H, W] ray distance from the camera centre; large (or Infinity) for background. */
  depth: Float32Array;
  /** [H, W] object index >= 0, -1 floor, -2 background. */
  objectId: Int32Array;
  /** [3, H, W] world coordinates of the hit point, 0 for background. */
  xyz: Float32Array;
  width: number;
  height: number;
}

/** Image accessor the rendering teachers take: image id -> its view. */
export type ViewAccessor = (imageId: string) => RenderedView;

/** Checks the sizes of the named arrays of a view (ERR_VALR_SHAPE naming the image id otherwise). */
export function checkView(
  v: RenderedView,
  imageId: string,
  who: string,
  fields: readonly ('rgb' | 'depth' | 'objectId' | 'xyz')[] = ['rgb', 'depth', 'objectId', 'xyz'],
): RenderedView {
  if (!v || typeof v !== 'object') fail('ERR_VALR_ARGUMENT', `${who}: the view accessor returned no view for image '${imageId}'`);
  const { width: W, height: H } = v;
  if (!Number.isSafeInteger(W) || !Number.isSafeInteger(H) || W < 1 || H < 1) {
    fail('ERR_VALR_SHAPE', `${who}: image '${imageId}' has size ${W}x${H}; width and height must be positive integers`);
  }
  const want: [string, ArrayLike<number> | undefined, number, Function][] = [
    ['rgb', v.rgb, 3 * H * W, Float32Array],
    ['depth', v.depth, H * W, Float32Array],
    ['objectId', v.objectId, H * W, Int32Array],
    ['xyz', v.xyz, 3 * H * W, Float32Array],
  ];
  for (const [field, arr, n, type] of want) {
    if (!fields.includes(field as 'rgb')) continue;
    if (!(arr instanceof type)) fail('ERR_VALR_ARGUMENT', `${who}: image '${imageId}' ${field} must be a ${type.name}`);
    if (arr.length !== n) fail('ERR_VALR_SHAPE', `${who}: image '${imageId}' ${field} has ${arr.length} values, expected ${n} for ${H}x${W}`);
  }
  return v;
}

/**
 * Adaptive pooling bins (PyTorch's adaptive_avg_pool2d): output cell i of `cells` covers
 * input rows [floor(i*size/cells), ceil((i+1)*size/cells)). Every bin is non-empty; when
 * `cells` divides `size` the bins are an exact partition into size/cells rows.
 */
export function poolBins(size: number, cells: number): { start: Int32Array; end: Int32Array } {
  const start = new Int32Array(cells), end = new Int32Array(cells);
  for (let i = 0; i < cells; i++) {
    start[i] = Math.floor((i * size) / cells);
    end[i] = Math.ceil(((i + 1) * size) / cells);
  }
  return { start, end };
}
