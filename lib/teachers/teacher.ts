// A teacher gives frozen patch features phi_m(I) for an image, the targets of the REPA
// alignment loss (see VALR_SPEC.md, "Vision alignment"): patch tokens only, computed
// without gradient, deterministic for a given image id.
import { fail } from '../errors';

export interface Teacher {
  readonly name: string;
  /** [Gh, Gw]; P = Gh * Gw patches, row-major (patch p = gy * Gw + gx). */
  readonly grid: readonly [number, number];
  /** D_m, features per patch. */
  readonly dim: number;
  /** Features [P * dim] (row-major [P, dim]) for one image id; deterministic, no gradient. */
  features(imageId: string): Float32Array;
  /** The same for several ids, stacked [n, P, dim] (may batch internally). */
  batch(imageIds: readonly string[]): Float32Array;
}

/** P = Gh * Gw. */
/** A teacher that transforms another's features (caching, standardisation): it keeps the inner one's name, grid and dim. */
export abstract class TeacherWrapper implements Teacher {
  constructor(readonly inner: Teacher) {}
  get name(): string {
    return this.inner.name;
  }
  get grid(): readonly [number, number] {
    return this.inner.grid;
  }
  get dim(): number {
    return this.inner.dim;
  }
  abstract features(imageId: string): Float32Array;
  abstract batch(imageIds: readonly string[]): Float32Array;
}

export function patchCount(t: Pick<Teacher, 'grid'>): number {
  return t.grid[0] * t.grid[1];
}

/** Stacks features(id) of each id into [n, P, dim]: the batch() of teachers without a batched path. */
export function stackFeatures(t: Teacher, imageIds: readonly string[]): Float32Array {
  const row = patchCount(t) * t.dim;
  const out = new Float32Array(imageIds.length * row);
  imageIds.forEach((id, i) => {
    const f = t.features(id);
    if (f.length !== row) fail('ERR_VALR_INTERNAL', `teacher '${t.name}': features('${id}') has ${f.length} values, expected ${row}`);
    out.set(f, i * row);
  });
  return out;
}

/** Validates a [Gh, Gw] grid argument and returns it as a frozen tuple. */
export function checkGrid(grid: unknown, who: string): readonly [number, number] {
  const ok = Array.isArray(grid) && grid.length === 2 && grid.every((g) => Number.isSafeInteger(g) && g >= 1);
  if (!ok) fail('ERR_VALR_ARGUMENT', `${who}: grid must be [Gh, Gw] with positive integers, got ${JSON.stringify(grid)}`);
  return Object.freeze([grid[0], grid[1]] as [number, number]);
}

export function checkPositiveInt(v: unknown, what: string, who: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) fail('ERR_VALR_ARGUMENT', `${who}: ${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

export function checkImageId(id: unknown, who: string): string {
  if (typeof id !== 'string') fail('ERR_VALR_ARGUMENT', `${who}: image ids must be strings, got ${typeof id}`);
  return id;
}
