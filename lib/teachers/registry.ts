// makeTeacher: a teacher from a plain spec (what a training config holds), wrapped by
// default in CachedTeacher, an LRU cache keyed by image id, so that features of the same
// image are computed once per run however many steps, epochs or teachers' batches ask
// for them.
import { fail } from '../errors';
import type { VisionTower } from '../nn/vit';
import { AppearanceTeacher, type AppearanceTeacherOptions } from './appearance';
import { GeometryTeacher, type GeometryTeacherOptions } from './geometry';
import { OwnVisionTeacher, type ImageAccessor, type OwnVisionTeacherOptions } from './own';
import { PrecomputedTeacher, type PrecomputedTeacherOptions } from './precomputed';
import { checkImageId, patchCount, TeacherWrapper, type Teacher } from './teacher';
import type { ViewAccessor } from './view';

export interface CacheOptions {
  /** Bytes of cached features (default 256 MiB). */
  maxBytes?: number;
  /** Cached images (default unlimited: maxBytes bounds the cache). */
  maxEntries?: number;
}

interface CommonSpec {
  /** false: no cache; an object: its limits (default { maxBytes: 256 MiB }). */
  cache?: false | CacheOptions;
}

type Optional<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

/** Defaults makeTeacher fills in when a spec leaves them out (the constructors have none). */
export const TEACHER_SPEC_DEFAULTS = Object.freeze({ maxObjects: 8, appearanceDim: 64, seed: 0 });

/**
 * grid: spec.grid, else deps.grid (for the rendering teachers); maxObjects, dim and seed
 * default to TEACHER_SPEC_DEFAULTS. 'own' takes its grid and dim from the tower and
 * 'precomputed' from its file.
 */
export type TeacherSpec =
  | ({ kind: 'geometry' } & Optional<GeometryTeacherOptions, 'grid' | 'maxObjects'> & CommonSpec)
  | ({ kind: 'appearance' } & Optional<AppearanceTeacherOptions, 'grid' | 'dim' | 'seed'> & CommonSpec)
  | ({ kind: 'own' } & OwnVisionTeacherOptions & CommonSpec)
  | ({ kind: 'precomputed'; path: string } & PrecomputedTeacherOptions & CommonSpec);

export type TeacherKind = TeacherSpec['kind'];

export interface TeacherDeps {
  /** Rendered views, for 'geometry' and 'appearance'. */
  view?: ViewAccessor;
  /** The patch grid of the rendering teachers whose spec gives none. */
  grid?: readonly [number, number];
  /** The model's vision tower and its input images, for 'own'. */
  tower?: VisionTower;
  images?: ImageAccessor;
}

/** A Map in least-recently-used order with an entry and a byte budget. */
export class LruCache<K, V extends { byteLength: number }> {
  readonly maxBytes: number;
  readonly maxEntries: number;
  #map = new Map<K, V>();
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(options: CacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? 256 * 2 ** 20;
    this.maxEntries = options.maxEntries ?? Infinity;
    if (!(this.maxBytes >= 0) || !(this.maxEntries >= 0)) fail('ERR_VALR_ARGUMENT', 'LruCache: maxBytes and maxEntries must be >= 0');
  }
  get size(): number {
    return this.#map.size;
  }
  get bytes(): number {
    return this.#bytes;
  }
  has(key: K): boolean {
    return this.#map.has(key);
  }
  /** The value (now the most recently used), or undefined; counts a hit or a miss. */
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.#map.delete(key);
    this.#map.set(key, v);
    return v;
  }
  /** Inserts (or refreshes) `key`, evicting the least recently used entries over budget. A value over the whole budget is not kept. */
  set(key: K, value: V): this {
    this.delete(key);
    if (value.byteLength > this.maxBytes || this.maxEntries < 1) return this;
    this.#map.set(key, value);
    this.#bytes += value.byteLength;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.maxBytes && this.#map.size <= this.maxEntries) break;
      this.#map.delete(k);
      this.#bytes -= v.byteLength;
    }
    return this;
  }
  delete(key: K): boolean {
    const v = this.#map.get(key);
    if (v === undefined) return false;
    this.#map.delete(key);
    this.#bytes -= v.byteLength;
    return true;
  }
  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }
  keys(): IterableIterator<K> {
    return this.#map.keys();
  }
}

/**
 * Caches an inner teacher's features by image id. batch() computes only the ids it has not
 * seen (each once, in one inner batch() call). Callers get copies, so mutating a returned
 * array never corrupts the cache.
 */
export class CachedTeacher extends TeacherWrapper {
  readonly cache: LruCache<string, Float32Array>;
  constructor(inner: Teacher, options: CacheOptions = {}) {
    super(inner);
    this.cache = new LruCache(options);
  }

  features(imageId: string): Float32Array {
    checkImageId(imageId, this.name);
    const hit = this.cache.get(imageId);
    if (hit) return hit.slice();
    const f = this.inner.features(imageId);
    this.#check(f, 1);
    this.cache.set(imageId, f.slice());
    return f;
  }

  batch(imageIds: readonly string[]): Float32Array {
    const row = patchCount(this) * this.dim, out = new Float32Array(imageIds.length * row);
    const missing: string[] = [], where = new Map<string, number[]>();
    imageIds.forEach((id, i) => {
      checkImageId(id, this.name);
      const pending = where.get(id);
      if (pending) return void pending.push(i);
      const hit = this.cache.get(id);
      if (hit) return void out.set(hit, i * row);
      where.set(id, [i]);
      missing.push(id);
    });
    if (missing.length) {
      const fresh = this.inner.batch(missing);
      this.#check(fresh, missing.length);
      missing.forEach((id, j) => {
        const f = fresh.slice(j * row, (j + 1) * row);
        for (const i of where.get(id)!) out.set(f, i * row);
        this.cache.set(id, f);
      });
    }
    return out;
  }

  #check(f: Float32Array, n: number): void {
    const want = n * patchCount(this) * this.dim;
    if (!(f instanceof Float32Array) || f.length !== want) {
      fail('ERR_VALR_INTERNAL', `teacher '${this.name}' returned ${f?.length} values for ${n} image(s), expected ${want}`);
    }
  }
}

function need<T>(v: T | undefined, what: string, kind: string): T {
  if (v === undefined || v === null) fail('ERR_VALR_ARGUMENT', `makeTeacher: a '${kind}' teacher needs deps.${what}`);
  return v;
}

/** A teacher from its spec, cached (see CachedTeacher) unless spec.cache === false. */
export function makeTeacher(spec: TeacherSpec, deps: TeacherDeps = {}): Teacher {
  if (!spec || typeof spec !== 'object') fail('ERR_VALR_ARGUMENT', 'makeTeacher: spec must be an object with a kind');
  let t: Teacher;
  switch (spec.kind) {
    case 'geometry':
      t = new GeometryTeacher(need(deps.view, 'view', spec.kind), {
        ...spec,
        grid: spec.grid ?? need(deps.grid, 'grid (or spec.grid)', spec.kind),
        maxObjects: spec.maxObjects ?? TEACHER_SPEC_DEFAULTS.maxObjects,
      });
      break;
    case 'appearance':
      t = new AppearanceTeacher(need(deps.view, 'view', spec.kind), {
        ...spec,
        grid: spec.grid ?? need(deps.grid, 'grid (or spec.grid)', spec.kind),
        dim: spec.dim ?? TEACHER_SPEC_DEFAULTS.appearanceDim,
        seed: spec.seed ?? TEACHER_SPEC_DEFAULTS.seed,
      });
      break;
    case 'own':
      t = new OwnVisionTeacher(need(deps.tower, 'tower', spec.kind), need(deps.images, 'images', spec.kind), spec);
      break;
    case 'precomputed':
      t = new PrecomputedTeacher(spec.path, spec);
      break;
    default:
      fail('ERR_VALR_ARGUMENT', `makeTeacher: unknown teacher kind ${JSON.stringify((spec as { kind?: unknown }).kind)} (geometry, appearance, own or precomputed)`);
  }
  return spec.cache === false ? t : new CachedTeacher(t, spec.cache ?? {});
}

/** makeTeacher for each spec; names must be distinct (one projector psi_m per teacher). */
export function makeTeachers(specs: readonly TeacherSpec[], deps: TeacherDeps = {}): Teacher[] {
  const teachers = specs.map((s) => makeTeacher(s, deps));
  const seen = new Set<string>();
  for (const t of teachers) {
    if (seen.has(t.name)) fail('ERR_VALR_ARGUMENT', `makeTeachers: two teachers are named '${t.name}'; give each a distinct name`);
    seen.add(t.name);
  }
  return teachers;
}
