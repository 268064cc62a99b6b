// AppearanceTeacher: a frozen appearance feature extractor derived from a seed, the
// package's stand-in for DINOv3 (no download, no training). For one image:
//
//   x   = (rgb - mean_c) / std_c                 ImageNet constants, [3, H, W]
//   h1  = avgpool2(relu(conv3x3(x; W1)))         C1 maps at ceil(H/2) x ceil(W/2)
//   h2  = relu(conv3x3(h1; W2))                  C2 maps at the same size
//   f   = adaptive-avg-pool([h1; h2]) - r        [P, C1 + C2] on the Gh x Gw grid (poolBins)
//   y   = layernorm(f R)                         [P, dim - 6], no affine, eps 1e-2
//   out = [y, colour mean (3), colour std (3)]   per patch, colour stats standardised
//
// conv3x3 has zero padding 1 and stride 1, no bias. W1 [C1, 3, 3, 3] ~ N(0, 2 / 27),
// W2 [C2, C1, 3, 3] ~ N(0, 2 / (9 C1)) (He), R [C1 + C2, dim - 6] ~ N(0, 1 / (C1 + C2)),
// drawn in that order, row-major, from mulberry32(seed) with Box-Muller (the generator of
// nn.Initializer). r is the exact response of the network to an endless mid-grey image
// (every channel 0.5), a fixed centring constant, so a flat grey patch maps near zero.
// Colour statistics of the raw [0, 1] pixels of each patch: mean standardised as
// (m - 0.5) / 0.25, standard deviation as (s - 0.1) / 0.1. With colorStats: false all
// `dim` outputs come from the projection.
// Defaults: C1 = 16, C2 = 32. Cost ~ H W (27 C1 + 9 C1 C2 / 4) + P (C1 + C2) dim
// multiply-adds per image: in plain JS on one thread roughly 20-40 ms for 64 x 64 to
// 128 x 128 and 150 ms for 224 x 224 (grid 16 x 16, dim 256); makeTeacher's cache
// computes each image once.
import { fail } from '../errors';
import { checkGrid, checkImageId, checkPositiveInt, stackFeatures, type Teacher } from './teacher';
import { checkView, poolBins, type ViewAccessor } from './view';

export interface AppearanceTeacherOptions {
  grid: readonly [number, number];
  dim: number;
  seed: number;
  name?: string;
  /** [C1, C2], the widths of the two conv layers (default [16, 32]). */
  channels?: readonly [number, number];
  /** Append the 6 per-patch colour statistics (default true). */
  colorStats?: boolean;
}

const RGB_MEAN = [0.485, 0.456, 0.406];
const RGB_STD = [0.229, 0.224, 0.225];
const LN_EPS = 1e-2;
export const APPEARANCE_COLOR_DIMS = 6;

/** mulberry32 + Box-Muller, the same stream as nn.Initializer(seed). */
function gaussian(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n: number, std: number): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = Math.max(next(), 1e-12), v = next();
      out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
    return out;
  };
}

/**
 * relu(conv3x3(x)) with zero padding 1: x [Cin, H, W], w [Cout, Cin, 3, 3] -> [Cout, H, W].
 * Accumulates one output map at a time in float64, a kernel row (3 taps) per pass.
 */
function conv3x3Relu(x: Float32Array, Cin: number, H: number, W: number, w: Float32Array, Cout: number): Float32Array {
  const HW = H * W, out = new Float32Array(Cout * HW), acc = new Float64Array(HW);
  for (let co = 0; co < Cout; co++) {
    acc.fill(0);
    for (let ci = 0; ci < Cin; ci++) {
      const xi = ci * HW;
      for (let ky = 0; ky < 3; ky++) {
        const dy = ky - 1, y0 = Math.max(0, -dy), y1 = Math.min(H, H - dy);
        const wb = ((co * Cin + ci) * 3 + ky) * 3, w0 = w[wb], w1 = w[wb + 1], w2 = w[wb + 2];
        for (let y = y0; y < y1; y++) {
          const o = y * W, i = xi + (y + dy) * W;
          if (W === 1) {
            acc[o] += w1 * x[i];
            continue;
          }
          acc[o] += w1 * x[i] + w2 * x[i + 1];
          for (let xx = 1; xx < W - 1; xx++) acc[o + xx] += w0 * x[i + xx - 1] + w1 * x[i + xx] + w2 * x[i + xx + 1];
          acc[o + W - 1] += w0 * x[i + W - 2] + w1 * x[i + W - 1];
        }
      }
    }
    const o = co * HW;
    for (let i = 0; i < HW; i++) out[o + i] = acc[i] > 0 ? acc[i] : 0;
  }
  return out;
}

/** 2 x 2 average pooling, stride 2; an odd last row/column averages what it has. */
function avgPool2(x: Float32Array, C: number, H: number, W: number): { y: Float32Array; H: number; W: number } {
  const Ho = Math.ceil(H / 2), Wo = Math.ceil(W / 2), y = new Float32Array(C * Ho * Wo);
  for (let c = 0; c < C; c++)
    for (let i = 0; i < Ho; i++)
      for (let j = 0; j < Wo; j++) {
        let s = 0, n = 0;
        for (let a = 2 * i; a < Math.min(2 * i + 2, H); a++)
          for (let b = 2 * j; b < Math.min(2 * j + 2, W); b++) (s += x[(c * H + a) * W + b]), n++;
        y[(c * Ho + i) * Wo + j] = s / n;
      }
  return { y, H: Ho, W: Wo };
}

export class AppearanceTeacher implements Teacher {
  readonly name: string;
  readonly grid: readonly [number, number];
  readonly dim: number;
  readonly seed: number;
  readonly channels: readonly [number, number];
  readonly colorStats: boolean;
  readonly #view: ViewAccessor;
  readonly #w1: Float32Array;
  readonly #w2: Float32Array;
  readonly #proj: Float32Array; // [C1 + C2, dim - colour dims]
  readonly #ref: Float32Array; // [C1 + C2]

  constructor(view: ViewAccessor, options: AppearanceTeacherOptions) {
    const who = 'AppearanceTeacher';
    if (typeof view !== 'function') fail('ERR_VALR_ARGUMENT', `${who}: view must be a function (imageId) => RenderedView`);
    if (!options || typeof options !== 'object') fail('ERR_VALR_ARGUMENT', `${who}: options { grid, dim, seed } are required`);
    this.#view = view;
    this.grid = checkGrid(options.grid, who);
    this.dim = checkPositiveInt(options.dim, 'dim', who);
    if (!Number.isSafeInteger(options.seed)) fail('ERR_VALR_ARGUMENT', `${who}: seed must be an integer, got ${JSON.stringify(options.seed)}`);
    this.seed = options.seed;
    this.name = options.name ?? 'appearance';
    this.colorStats = options.colorStats ?? true;
    const ch = options.channels ?? [16, 32];
    if (!Array.isArray(ch) || ch.length !== 2) fail('ERR_VALR_ARGUMENT', `${who}: channels must be [C1, C2]`);
    const C1 = checkPositiveInt(ch[0], 'channels[0]', who), C2 = checkPositiveInt(ch[1], 'channels[1]', who);
    this.channels = Object.freeze([C1, C2] as [number, number]);
    const Dp = this.dim - (this.colorStats ? APPEARANCE_COLOR_DIMS : 0);
    if (Dp < 2) fail('ERR_VALR_ARGUMENT', `${who}: dim ${this.dim} is too small (at least ${this.colorStats ? 8 : 2}${this.colorStats ? ' with colorStats' : ''})`);
    const g = gaussian(this.seed);
    this.#w1 = g(C1 * 27, Math.sqrt(2 / 27));
    this.#w2 = g(C2 * C1 * 9, Math.sqrt(2 / (9 * C1)));
    this.#proj = g((C1 + C2) * Dp, 1 / Math.sqrt(C1 + C2));
    // Response to an endless flat mid-grey image: every 3x3 window sees the same values.
    const ref = new Float32Array(C1 + C2);
    for (let k = 0; k < C1; k++) {
      let s = 0;
      for (let c = 0; c < 3; c++) {
        const grey = (0.5 - RGB_MEAN[c]) / RGB_STD[c];
        for (let t = 0; t < 9; t++) s += this.#w1[(k * 3 + c) * 9 + t] * grey;
      }
      ref[k] = Math.max(0, s);
    }
    for (let j = 0; j < C2; j++) {
      let s = 0;
      for (let k = 0; k < C1; k++) for (let t = 0; t < 9; t++) s += this.#w2[(j * C1 + k) * 9 + t] * ref[k];
      ref[C1 + j] = Math.max(0, s);
    }
    this.#ref = ref;
  }

  features(imageId: string): Float32Array {
    checkImageId(imageId, this.name);
    const v = checkView(this.#view(imageId), imageId, `teacher '${this.name}'`, ['rgb']);
    const { width: W, height: H, rgb } = v;
    const [C1, C2] = this.channels, C = C1 + C2, [Gh, Gw] = this.grid, P = Gh * Gw, D = this.dim;
    const Dp = D - (this.colorStats ? APPEARANCE_COLOR_DIMS : 0);
    const HW = H * W;
    const x = new Float32Array(3 * HW);
    for (let c = 0; c < 3; c++) for (let i = 0; i < HW; i++) x[c * HW + i] = (rgb[c * HW + i] - RGB_MEAN[c]) / RGB_STD[c];
    const p1 = avgPool2(conv3x3Relu(x, 3, H, W, this.#w1, C1), C1, H, W);
    const h2 = conv3x3Relu(p1.y, C1, p1.H, p1.W, this.#w2, C2);
    const out = new Float32Array(P * D);
    const f = new Float64Array(C), y = new Float64Array(Dp), proj = this.#proj, ref = this.#ref;
    const rows = poolBins(p1.H, Gh), cols = poolBins(p1.W, Gw);
    const hw1 = p1.H * p1.W;
    for (let gy = 0; gy < Gh; gy++)
      for (let gx = 0; gx < Gw; gx++) {
        const n = (rows.end[gy] - rows.start[gy]) * (cols.end[gx] - cols.start[gx]);
        for (let k = 0; k < C; k++) {
          const src = k < C1 ? p1.y : h2, base = (k < C1 ? k : k - C1) * hw1;
          let s = 0;
          for (let a = rows.start[gy]; a < rows.end[gy]; a++)
            for (let b = cols.start[gx]; b < cols.end[gx]; b++) s += src[base + a * p1.W + b];
          f[k] = s / n - ref[k];
        }
        y.fill(0);
        for (let k = 0; k < C; k++) {
          const fk = f[k], row = k * Dp;
          for (let j = 0; j < Dp; j++) y[j] += fk * proj[row + j];
        }
        let mean = 0, v2 = 0;
        for (let j = 0; j < Dp; j++) mean += y[j];
        mean /= Dp;
        for (let j = 0; j < Dp; j++) v2 += (y[j] - mean) ** 2;
        const inv = 1 / Math.sqrt(v2 / Dp + LN_EPS);
        const o = (gy * Gw + gx) * D;
        for (let j = 0; j < Dp; j++) out[o + j] = (y[j] - mean) * inv;
      }
    if (this.colorStats) {
      const r = poolBins(H, Gh), c = poolBins(W, Gw);
      for (let gy = 0; gy < Gh; gy++)
        for (let gx = 0; gx < Gw; gx++) {
          const o = (gy * Gw + gx) * D + Dp;
          const n = (r.end[gy] - r.start[gy]) * (c.end[gx] - c.start[gx]);
          for (let ch = 0; ch < 3; ch++) {
            let s = 0, s2 = 0;
            for (let a = r.start[gy]; a < r.end[gy]; a++)
              for (let b = c.start[gx]; b < c.end[gx]; b++) {
                const val = rgb[ch * HW + a * W + b];
                s += val;
                s2 += val * val;
              }
            const m = s / n, sd = Math.sqrt(Math.max(0, s2 / n - m * m));
            out[o + ch] = (m - 0.5) / 0.25;
            out[o + 3 + ch] = (sd - 0.1) / 0.1;
          }
        }
    }
    return out;
  }

  batch(imageIds: readonly string[]): Float32Array {
    return stackFeatures(this, imageIds);
  }
}
