// PrecomputedTeacher: features computed elsewhere (DINOv3, SigLIP, pi^3 run offline in
// Python) stored in one safetensors file keyed by image id:
//   tensor name = image id, dtype F32 / F16 / BF16 / F64, shape [P, D] or [Gh, Gw, D]
//   __metadata__ (optional): grid "Gh,Gw", dim "D", name "<teacher name>"
// The grid comes from metadata "grid", else from the [Gh, Gw, D] shapes, else [s, s]
// when P = s * s; otherwise the file is refused. Every tensor is checked when the file is
// opened (same P and D, a float dtype, agreeing with the metadata), so features() can
// only fail for an id the file does not hold. The file is read into memory whole; F16 /
// BF16 values stay 2 bytes each and are widened per request (shard very large sets).
//
// writing one from Python:
//   safetensors.torch.save_file({id: feats.float().contiguous() for id, feats in ...},
//                               path, metadata={"grid": f"{gh},{gw}"})
import * as nodePath from 'path';
import { fail, ValrError } from '../errors';
import { readSafetensorsSync, toFloat32, writeSafetensorsAtomic, type SafetensorsFile, type TensorRecord, type TensorToWrite } from '../io/safetensors';
import { checkGrid, checkImageId, checkPositiveInt, stackFeatures, type Teacher } from './teacher';

export interface PrecomputedTeacherOptions {
  /** Default: metadata "name", else the file's base name without extension. */
  name?: string;
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);
export const PRECOMPUTED_FORMAT = 'valr-teacher-features/1';

function parseGrid(text: string, file: string): [number, number] {
  const m = /^\s*(\d+)\s*[,x]\s*(\d+)\s*$/.exec(text);
  const g = m ? [Number(m[1]), Number(m[2])] : [];
  if (!m || !g.every((v) => Number.isSafeInteger(v) && v >= 1)) {
    fail('ERR_VALR_ARGUMENT', `${file}: __metadata__ grid ${JSON.stringify(text.slice(0, 40))} is not "Gh,Gw" with positive integers`);
  }
  return [g[0], g[1]];
}

export class PrecomputedTeacher implements Teacher {
  readonly name: string;
  readonly grid: readonly [number, number];
  readonly dim: number;
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly #tensors: Map<string, TensorRecord>;

  constructor(path: string, options: PrecomputedTeacherOptions = {}) {
    if (typeof path !== 'string' || !path) fail('ERR_VALR_ARGUMENT', 'PrecomputedTeacher: path must be a non-empty string');
    let file: SafetensorsFile;
    try {
      file = readSafetensorsSync(path);
    } catch (e) {
      if (e instanceof ValrError) throw e;
      throw new ValrError('ERR_VALR_ARGUMENT', `PrecomputedTeacher: cannot read ${path}: ${(e as Error).message}`);
    }
    this.path = path;
    this.metadata = Object.freeze({ ...file.metadata });
    this.#tensors = file.tensors;
    const meta = file.metadata;
    let grid: [number, number] | null = typeof meta.grid === 'string' ? parseGrid(meta.grid, path) : null;
    let gridFrom = grid ? '__metadata__ grid' : '';
    let dim = -1, P = -1, first = '';
    for (const [id, rec] of file.tensors) {
      const t = `${path}: tensor '${id}'`;
      if (!FLOAT_DTYPES.has(rec.dtype)) fail('ERR_VALR_DTYPE', `${t} has dtype ${rec.dtype}; teacher features must be F32, F16, BF16 or F64`);
      const s = rec.shape;
      if ((s.length !== 2 && s.length !== 3) || s.some((d) => d === 0)) {
        fail('ERR_VALR_SHAPE', `${t} has shape [${s.join(', ')}]; expected [P, D] or [Gh, Gw, D] with non-zero sizes`);
      }
      const p = s.length === 2 ? s[0] : s[0] * s[1], d = s[s.length - 1];
      if (P < 0) (P = p), (dim = d), (first = id);
      else if (p !== P || d !== dim) {
        fail('ERR_VALR_SHAPE', `${t} has shape [${s.join(', ')}] (P = ${p}, D = ${d}) but tensor '${first}' has P = ${P}, D = ${dim}: every image must have the same shape`);
      }
      if (s.length === 3) {
        if (grid && (grid[0] !== s[0] || grid[1] !== s[1])) {
          fail('ERR_VALR_SHAPE', `${t} has grid ${s[0]}x${s[1]} but the ${gridFrom} is ${grid[0]}x${grid[1]}`);
        }
        if (!grid) (grid = [s[0], s[1]]), (gridFrom = `shape of tensor '${id}'`);
      }
    }
    if (typeof meta.dim === 'string') {
      const md = Number(meta.dim);
      if (!Number.isSafeInteger(md) || md < 1) fail('ERR_VALR_ARGUMENT', `${path}: __metadata__ dim ${JSON.stringify(meta.dim.slice(0, 40))} is not a positive integer`);
      if (dim >= 0 && md !== dim) fail('ERR_VALR_SHAPE', `${path}: __metadata__ dim is ${md} but the tensors have D = ${dim}`);
      dim = md;
    }
    if (P < 0) {
      if (!grid || dim < 0) fail('ERR_VALR_ARGUMENT', `${path}: holds no features, and no __metadata__ grid and dim to define an empty teacher`);
      P = grid[0] * grid[1];
    }
    if (grid && grid[0] * grid[1] !== P) {
      fail('ERR_VALR_SHAPE', `${path}: the ${gridFrom} ${grid[0]}x${grid[1]} has ${grid[0] * grid[1]} patches but the tensors have P = ${P}`);
    }
    if (!grid) {
      const s = Math.round(Math.sqrt(P));
      if (s * s !== P) {
        fail('ERR_VALR_SHAPE', `${path}: P = ${P} patches is not a perfect square and the file has no __metadata__ grid "Gh,Gw" (or [Gh, Gw, D] tensors) to give the grid`);
      }
      grid = [s, s];
    }
    this.grid = Object.freeze(grid);
    this.dim = dim;
    this.name = options.name ?? meta.name ?? nodePath.basename(path).replace(/\.safetensors$/i, '');
  }

  /** The image ids the file holds. */
  ids(): string[] {
    return [...this.#tensors.keys()];
  }

  has(imageId: string): boolean {
    return this.#tensors.has(imageId);
  }

  get size(): number {
    return this.#tensors.size;
  }

  features(imageId: string): Float32Array {
    checkImageId(imageId, this.name);
    const rec = this.#tensors.get(imageId);
    if (!rec) {
      fail('ERR_VALR_ARGUMENT', `teacher '${this.name}': no features for image id '${imageId.slice(0, 200)}' in ${this.path} (${this.#tensors.size} ids)`);
    }
    return toFloat32(rec, imageId);
  }

  batch(imageIds: readonly string[]): Float32Array {
    return stackFeatures(this, imageIds);
  }
}

/**
 * Writes `features` (image id -> [P * dim] values, P = Gh * Gw) as a PrecomputedTeacher
 * file: F32 [P, dim] tensors named by id and __metadata__ {grid: "Gh,Gw", dim, format,
 * name?}. Atomic (temporary file + rename).
 */
export async function writePrecomputedTeacher(
  path: string,
  features: ReadonlyMap<string, Float32Array>,
  grid: readonly [number, number],
  dim: number,
  options: { name?: string } = {},
): Promise<void> {
  const who = 'writePrecomputedTeacher';
  const [Gh, Gw] = checkGrid(grid, who);
  checkPositiveInt(dim, 'dim', who);
  if (!(features instanceof Map)) fail('ERR_VALR_ARGUMENT', `${who}: features must be a Map<imageId, Float32Array>`);
  const P = Gh * Gw;
  const tensors: Record<string, TensorToWrite> = Object.create(null);
  for (const [id, f] of features) {
    // (serializeSafetensors builds its header in a plain object, where "__proto__" would be lost)
    if (typeof id !== 'string' || id === '' || id === '__metadata__' || id === '__proto__') {
      fail('ERR_VALR_ARGUMENT', `${who}: image id ${JSON.stringify(id)} cannot be a tensor name`);
    }
    if (!(f instanceof Float32Array)) fail('ERR_VALR_ARGUMENT', `${who}: features of '${id}' must be a Float32Array`);
    if (f.length !== P * dim) fail('ERR_VALR_SHAPE', `${who}: features of '${id}' have ${f.length} values, expected [${P}, ${dim}] (${P * dim}) for grid ${Gh}x${Gw}`);
    tensors[id] = { dtype: 'F32', shape: [P, dim], data: f };
  }
  const metadata: Record<string, string> = { grid: `${Gh},${Gw}`, dim: String(dim), format: PRECOMPUTED_FORMAT };
  if (options.name !== undefined) metadata.name = String(options.name);
  await writeSafetensorsAtomic(path, tensors, metadata);
}
