// GeometryTeacher: the package's stand-in for the paper's 3D encoder (pi^3), computed from
// the renderer's ground truth instead of a network. Per patch (adaptive pooling of the
// H x W pixels onto the Gh x Gw grid, see poolBins) it reports, with M = maxObjects:
//
//   offset  size  feature (raw value)                                   standardised as
//   0       1     mean normalised depth dn = min(depth, R) / R over all   (x - 0.5) / 0.25
//                 pixels, background pixels counting as dn = 1
//   1       1     depth spread: standard deviation of dn over the patch   x / 0.2
//                 (square root of the depth variance)
//   2       3     mean world position (x, y, z) of the hit pixels         (x - center) / extent
//                 (floor and objects); `sceneCenter` if the patch has none
//   5       3     mean unit surface normal (world frame) of the hit       x / (1 / sqrt 3)
//                 pixels whose normal could be estimated; 0 if none
//   8       3     fraction of floor, background, object pixels            (x - 1/3) / (sqrt 2 / 3)
//   11      M     object identity: fraction of pixels of object k in      x / 0.5
//                 slot k mod M (a soft one-hot by pixel fraction)
//
// dim = 11 + M. The standardisation constants are fixed (they depend only on the options,
// never on data), so the features of one image never depend on any other image. The
// identity slots use the scene's object indices, which are the same in every view of a
// scene: the patch covering object k has its mass in slot k whichever camera sees it,
// and positions and normals are world-frame, which is what ties views together for
// multi-view reasoning.
//
// Normals: at a hit pixel, dX is the finite difference of xyz to the right neighbour (or
// from the left one at the right edge / across an object boundary) and dY the same
// vertically (image y grows downward); neighbours must carry the same objectId, so
// differences never cross an occlusion boundary between objects. n = normalize(dY x dX),
// which faces the camera for a renderer whose camera frame is right-handed with x right,
// y down, z forward (OpenCV's convention); pixels with no same-surface neighbour on an axis
// are skipped.
import { fail } from '../errors';
import { checkGrid, checkImageId, checkPositiveInt, stackFeatures, type Teacher } from './teacher';
import { BACKGROUND_ID, checkView, FLOOR_ID, poolBins, type RenderedView, type ViewAccessor } from './view';

export interface GeometryTeacherOptions {
  grid: readonly [number, number];
  /** Identity slots M; objects with index >= M share slot index % M. */
  maxObjects: number;
  name?: string;
  /** R: depths are clamped to [0, R] and divided by R (default 10 world units). */
  depthRange?: number;
  /** Centre and half-extent of the scenes' world box, for the position features (default [0, 0, 0] and 5). */
  sceneCenter?: readonly [number, number, number];
  sceneExtent?: number;
  /** Apply the fixed standardisation (default true); false gives the raw values of the table above. */
  standardize?: boolean;
}

/** Offsets of the feature groups inside one patch's row. */
export interface GeometryLayout {
  depthMean: number;
  depthSpread: number;
  position: number;
  normal: number;
  /** floor, background, object fractions at fractions + 0, 1, 2 */
  fractions: number;
  identity: number;
  maxObjects: number;
  dim: number;
}

export const GEOMETRY_BASE_DIM = 11;

export function geometryLayout(maxObjects: number): GeometryLayout {
  checkPositiveInt(maxObjects, 'maxObjects', 'geometryLayout');
  return { depthMean: 0, depthSpread: 1, position: 2, normal: 5, fractions: 8, identity: 11, maxObjects, dim: GEOMETRY_BASE_DIM + maxObjects };
}

/** The fixed per-feature constants: standardised = (raw - mean) / std. */
export function geometryStandardization(
  maxObjects: number,
  options: { sceneCenter?: readonly [number, number, number]; sceneExtent?: number } = {},
): { mean: Float32Array; std: Float32Array } {
  const L = geometryLayout(maxObjects);
  const c = options.sceneCenter ?? [0, 0, 0], e = options.sceneExtent ?? 5;
  const mean = new Float32Array(L.dim), std = new Float32Array(L.dim).fill(1);
  mean[L.depthMean] = 0.5;
  std[L.depthMean] = 0.25;
  std[L.depthSpread] = 0.2;
  for (let i = 0; i < 3; i++) {
    mean[L.position + i] = c[i];
    std[L.position + i] = e;
    std[L.normal + i] = 1 / Math.sqrt(3);
    mean[L.fractions + i] = 1 / 3;
    std[L.fractions + i] = Math.SQRT2 / 3;
  }
  for (let k = 0; k < maxObjects; k++) std[L.identity + k] = 0.5;
  return { mean, std };
}

export class GeometryTeacher implements Teacher {
  readonly name: string;
  readonly grid: readonly [number, number];
  readonly dim: number;
  readonly layout: GeometryLayout;
  readonly depthRange: number;
  readonly sceneCenter: readonly [number, number, number];
  readonly sceneExtent: number;
  readonly standardize: boolean;
  readonly #view: ViewAccessor;
  readonly #mean: Float32Array;
  readonly #invStd: Float32Array;

  constructor(view: ViewAccessor, options: GeometryTeacherOptions) {
    const who = 'GeometryTeacher';
    if (typeof view !== 'function') fail('ERR_VALR_ARGUMENT', `${who}: view must be a function (imageId) => RenderedView`);
    if (!options || typeof options !== 'object') fail('ERR_VALR_ARGUMENT', `${who}: options { grid, maxObjects } are required`);
    this.#view = view;
    this.grid = checkGrid(options.grid, who);
    const M = checkPositiveInt(options.maxObjects, 'maxObjects', who);
    this.layout = geometryLayout(M);
    this.dim = this.layout.dim;
    this.name = options.name ?? 'geometry';
    this.depthRange = options.depthRange ?? 10;
    this.sceneCenter = Object.freeze([...(options.sceneCenter ?? [0, 0, 0])] as [number, number, number]);
    this.sceneExtent = options.sceneExtent ?? 5;
    if (!(Number.isFinite(this.depthRange) && this.depthRange > 0)) fail('ERR_VALR_ARGUMENT', `${who}: depthRange must be a positive number, got ${options.depthRange}`);
    if (!(Number.isFinite(this.sceneExtent) && this.sceneExtent > 0)) fail('ERR_VALR_ARGUMENT', `${who}: sceneExtent must be a positive number, got ${options.sceneExtent}`);
    if (this.sceneCenter.length !== 3 || !this.sceneCenter.every(Number.isFinite)) fail('ERR_VALR_ARGUMENT', `${who}: sceneCenter must be three finite numbers`);
    this.standardize = options.standardize ?? true;
    const { mean, std } = geometryStandardization(M, { sceneCenter: this.sceneCenter, sceneExtent: this.sceneExtent });
    this.#mean = mean;
    this.#invStd = std.map((s) => 1 / s);
  }

  features(imageId: string): Float32Array {
    checkImageId(imageId, this.name);
    const v = checkView(this.#view(imageId), imageId, `teacher '${this.name}'`, ['depth', 'objectId', 'xyz']);
    const out = geometryFeatures(v, this.grid, this.layout, this.depthRange, this.sceneCenter);
    if (this.standardize) {
      const D = this.dim, mean = this.#mean, inv = this.#invStd;
      for (let i = 0; i < out.length; i++) {
        const k = i % D;
        out[i] = (out[i] - mean[k]) * inv[k];
      }
    }
    return out;
  }

  batch(imageIds: readonly string[]): Float32Array {
    return stackFeatures(this, imageIds);
  }
}

/** Unit normals [3, H, W] (world frame) and a validity mask, as described at the top. */
export function estimateNormals(v: RenderedView): { normals: Float32Array; valid: Uint8Array } {
  const { width: W, height: H, xyz, objectId } = v;
  const HW = H * W;
  const normals = new Float32Array(3 * HW), valid = new Uint8Array(HW);
  const d = (a: number, b: number, c: number) => xyz[c * HW + b] - xyz[c * HW + a];
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = y * W + x, id = objectId[p];
      if (id <= BACKGROUND_ID) continue;
      let ax: number, bx: number; // dX = xyz[bx] - xyz[ax]
      if (x + 1 < W && objectId[p + 1] === id) (ax = p), (bx = p + 1);
      else if (x > 0 && objectId[p - 1] === id) (ax = p - 1), (bx = p);
      else continue;
      let ay: number, by: number;
      if (y + 1 < H && objectId[p + W] === id) (ay = p), (by = p + W);
      else if (y > 0 && objectId[p - W] === id) (ay = p - W), (by = p);
      else continue;
      const x0 = d(ax, bx, 0), x1 = d(ax, bx, 1), x2 = d(ax, bx, 2);
      const y0 = d(ay, by, 0), y1 = d(ay, by, 1), y2 = d(ay, by, 2);
      // n = dY x dX
      const n0 = y1 * x2 - y2 * x1, n1 = y2 * x0 - y0 * x2, n2 = y0 * x1 - y1 * x0;
      const len = Math.hypot(n0, n1, n2);
      if (!(len > 1e-12 * Math.hypot(x0, x1, x2) * Math.hypot(y0, y1, y2)) || !Number.isFinite(len)) continue;
      normals[p] = n0 / len;
      normals[HW + p] = n1 / len;
      normals[2 * HW + p] = n2 / len;
      valid[p] = 1;
    }
  }
  return { normals, valid };
}

/** The raw (unstandardised) features [P, dim] of one view. */
export function geometryFeatures(
  v: RenderedView,
  grid: readonly [number, number],
  L: GeometryLayout,
  depthRange: number,
  sceneCenter: readonly [number, number, number],
): Float32Array {
  const { width: W, height: H, depth, objectId, xyz } = v;
  const HW = H * W, [Gh, Gw] = grid, D = L.dim, M = L.maxObjects;
  const { normals, valid } = estimateNormals(v);
  const rows = poolBins(H, Gh), cols = poolBins(W, Gw);
  const out = new Float32Array(Gh * Gw * D);
  const ids = new Float64Array(M);
  for (let gy = 0; gy < Gh; gy++) {
    for (let gx = 0; gx < Gw; gx++) {
      let n = 0, hits = 0, nn = 0, floor = 0, bg = 0, obj = 0, sd = 0, sd2 = 0;
      let px = 0, py = 0, pz = 0, nx = 0, ny = 0, nz = 0;
      ids.fill(0);
      for (let y = rows.start[gy]; y < rows.end[gy]; y++) {
        for (let x = cols.start[gx]; x < cols.end[gx]; x++) {
          const p = y * W + x, id = objectId[p];
          n++;
          let dn = 1;
          if (id <= BACKGROUND_ID) {
            bg++;
          } else {
            const dd = depth[p];
            dn = dd >= 0 ? Math.min(dd / depthRange, 1) : dd < 0 ? 0 : 1; // NaN counts as far
            hits++;
            px += xyz[p];
            py += xyz[HW + p];
            pz += xyz[2 * HW + p];
            if (valid[p]) {
              nn++;
              nx += normals[p];
              ny += normals[HW + p];
              nz += normals[2 * HW + p];
            }
            if (id === FLOOR_ID) floor++;
            else {
              obj++;
              ids[id % M]++;
            }
          }
          sd += dn;
          sd2 += dn * dn;
        }
      }
      const o = (gy * Gw + gx) * D;
      const mean = sd / n;
      out[o + L.depthMean] = mean;
      out[o + L.depthSpread] = Math.sqrt(Math.max(0, sd2 / n - mean * mean));
      out[o + L.position] = hits ? px / hits : sceneCenter[0];
      out[o + L.position + 1] = hits ? py / hits : sceneCenter[1];
      out[o + L.position + 2] = hits ? pz / hits : sceneCenter[2];
      if (nn) {
        out[o + L.normal] = nx / nn;
        out[o + L.normal + 1] = ny / nn;
        out[o + L.normal + 2] = nz / nn;
      }
      out[o + L.fractions] = floor / n;
      out[o + L.fractions + 1] = bg / n;
      out[o + L.fractions + 2] = obj / n;
      for (let k = 0; k < M; k++) out[o + L.identity + k] = ids[k] / n;
    }
  }
  return out;
}
