// OwnVisionTeacher: the model's own vision tower, frozen, as the teacher (the paper's
// "own vision encoder as teacher" ablation). Features are the tower's output patch tokens
// [P, hiddenSize] (after its final LayerNorm), computed under noGrad() inside scope(), so
// no graph is recorded, no parameter gets a gradient and every intermediate tensor is
// freed; the result is copied to a host Float32Array. The tower's parameters are not
// touched (requiresGrad is left as it is).
import { noGrad } from '../autograd/function';
import { fail } from '../errors';
import type { VisionTower } from '../nn/vit';
import { scope } from '../tensor';
import { checkImageId, checkPositiveInt, type Teacher } from './teacher';

/** Image accessor: image id -> pixels [C, S, S] as the tower expects them (already normalised). */
export type ImageAccessor = (imageId: string) => Float32Array;

export interface OwnVisionTeacherOptions {
  name?: string;
  /** Images per tower forward pass in batch() (default 16). */
  maxBatch?: number;
}

export class OwnVisionTeacher implements Teacher {
  readonly name: string;
  readonly grid: readonly [number, number];
  readonly dim: number;
  readonly maxBatch: number;
  readonly tower: VisionTower;
  readonly #images: ImageAccessor;
  readonly #imageSize: number;

  constructor(tower: VisionTower, images: ImageAccessor, options: OwnVisionTeacherOptions = {}) {
    const who = 'OwnVisionTeacher';
    if (!tower || typeof tower.forward !== 'function' || !tower.config) fail('ERR_VALR_ARGUMENT', `${who}: tower must be a VisionTower`);
    if (typeof images !== 'function') fail('ERR_VALR_ARGUMENT', `${who}: images must be a function (imageId) => Float32Array [C, S, S]`);
    this.tower = tower;
    this.#images = images;
    const c = tower.config;
    const g = Math.floor(c.imageSize / c.patchSize);
    this.grid = Object.freeze([g, g] as [number, number]);
    this.dim = c.hiddenSize;
    this.#imageSize = c.channels * c.imageSize * c.imageSize;
    this.name = options.name ?? 'own';
    this.maxBatch = checkPositiveInt(options.maxBatch ?? 16, 'maxBatch', who);
  }

  features(imageId: string): Float32Array {
    return this.batch([imageId]);
  }

  batch(imageIds: readonly string[]): Float32Array {
    const n = imageIds.length, row = this.grid[0] * this.grid[1] * this.dim, size = this.#imageSize;
    const out = new Float32Array(n * row);
    for (let i0 = 0; i0 < n; i0 += this.maxBatch) {
      const m = Math.min(this.maxBatch, n - i0);
      const x = new Float32Array(m * size);
      for (let i = 0; i < m; i++) {
        const id = checkImageId(imageIds[i0 + i], this.name);
        const img = this.#images(id);
        if (!(img instanceof Float32Array)) fail('ERR_VALR_ARGUMENT', `teacher '${this.name}': the image accessor returned no Float32Array for '${id}'`);
        if (img.length !== size) {
          const c = this.tower.config;
          fail('ERR_VALR_SHAPE', `teacher '${this.name}': image '${id}' has ${img.length} values, expected [${c.channels}, ${c.imageSize}, ${c.imageSize}] (${size})`);
        }
        x.set(img, i * size);
      }
      const feats = scope(() => noGrad(() => this.tower.forward(x, m).value.toArray() as Float32Array));
      if (feats.length !== m * row) fail('ERR_VALR_INTERNAL', `teacher '${this.name}': the tower returned ${feats.length} values, expected ${m * row}`);
      out.set(feats, i0 * row);
    }
    return out;
  }
}
