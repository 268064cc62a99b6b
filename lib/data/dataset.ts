// The synthetic multi-view chain-of-thought dataset: scenes -> renders -> questions, split
// into train / val / test with held-out scenes (every scene, and so every image, belongs to
// exactly one split), families balanced within each split, deterministic from one seed.
//
// On disk (a directory):
//   train.jsonl, val.jsonl, test.jsonl  one Sample per line (see `Sample`)
//   views.safetensors                   for every image id: `<id>.rgb` F32 [3,H,W] in [0,1],
//                                       `<id>.depth` F32 [H,W], `<id>.objectId` I32 [H,W],
//                                       `<id>.xyz` F32 [3,H,W] (see RenderedView)
//   scenes.json                         { format, version, scenes: SceneRecord[] }
//   meta.json                           DatasetMeta (written last: its presence means complete)
// Every file is written atomically (temp file + rename).
import * as path from 'path';
import * as fs from 'fs';
import { ValrError } from '../errors';
import { readSafetensorsSync, toFloat32, toInt32, writeSafetensorsAtomic, type SafetensorsFile, type TensorToWrite } from '../io/safetensors';
import { parseJsonl, readJsonSync, readTextSync, toJsonl, writeFileAtomic } from './files';
import { checkSeed, hashSeed, Rng } from './prng';
import { defaultMinPixels, FAMILIES, makeQuestion, visibilityFromCounts, type Family, type Step } from './questions';
import { BACKGROUND_DEPTH, BACKGROUND_ID, FLOOR_ID, objectPixelCounts, renderObjectIds, renderScene, type RenderedView } from './render';
import { generateScene, type Scene } from './scene';

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = Object.freeze(['train', 'val', 'test'] as Split[]);

export const DATASET_FORMAT = 'valr-multiview-cot';
export const DATASET_VERSION = 1;

/** One line of train/val/test.jsonl. */
export interface Sample {
  id: string;
  sceneId: string;
  family: Family;
  /** Image ids, one per view, in view order (keys into views.safetensors). */
  images: string[];
  question: string;
  /** One step per view; step.view indexes `images`. */
  steps: Step[];
  answer: string;
  numViews: number;
}

/** A scene as scenes.json stores it: the generator's Scene plus where it went and what the views show. */
export interface SceneRecord extends Scene {
  split: Split;
  numViews: number;
  /** Image ids of its views, in camera order. */
  images: string[];
  /** [view][object]: pixels of each object in each view's objectId map. */
  pixelCounts: number[][];
}

export interface DatasetOptions {
  /** Master seed (default 1234). */
  seed?: number;
  /** Samples per split (defaults 600 / 100 / 200). */
  train?: number;
  val?: number;
  test?: number;
  /** The views-per-sample (= steps-per-sample) values to use, each in 2..8; scenes cycle through them. Default [2, 3, 4, 5]. */
  numViews?: number[];
  /** Square render size (default 32, the tiny preset's image size). */
  imageSize?: number;
  /** Families to generate (default all five), balanced within each split. */
  families?: Family[];
  /** Inclusive range of objects per scene (default [3, 6]). */
  objects?: [number, number];
}

export interface SplitCounts {
  samples: number;
  scenes: number;
  images: number;
  /** Scenes generated and rendered to fill the quotas (the ones with no usable question are dropped). */
  scenesTried: number;
  families: Record<string, number>;
  /** Samples per numViews value. */
  numViews: Record<string, number>;
}

export interface DatasetMeta {
  format: typeof DATASET_FORMAT;
  version: number;
  seed: number;
  imageSize: number;
  numViews: number[];
  families: Family[];
  objects: [number, number];
  /** Pixels an object needs in a view to count as visible there (questions' facts). */
  visibleMinPixels: number;
  backgroundDepth: number;
  floorId: number;
  backgroundId: number;
  sizes: Record<Split, number>;
  splits: Record<Split, SplitCounts>;
  files: { train: string; val: string; test: string; views: string; scenes: string };
}

export interface GeneratedDataset {
  meta: DatasetMeta;
  scenes: SceneRecord[];
  splits: Record<Split, Sample[]>;
  /** Image id -> render. */
  views: Map<string, RenderedView>;
}

const FILES = { train: 'train.jsonl', val: 'val.jsonl', test: 'test.jsonl', views: 'views.safetensors', scenes: 'scenes.json' } as const;

function arg(message: string): never {
  throw new ValrError('ERR_VALR_ARGUMENT', message);
}

function checkCount(v: unknown, what: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) arg(`${what} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

interface Resolved {
  seed: number;
  sizes: Record<Split, number>;
  numViews: number[];
  imageSize: number;
  families: Family[];
  objects: [number, number];
}

function resolveOptions(options: DatasetOptions): Resolved {
  if (options === null || typeof options !== 'object') arg('dataset options must be an object');
  const seed = checkSeed(options.seed ?? 1234, 'dataset seed');
  const sizes = {
    train: checkCount(options.train ?? 600, 'train size', 0, 1_000_000),
    val: checkCount(options.val ?? 100, 'val size', 0, 1_000_000),
    test: checkCount(options.test ?? 200, 'test size', 0, 1_000_000),
  };
  const numViews = options.numViews ?? [2, 3, 4, 5];
  if (!Array.isArray(numViews) || numViews.length === 0) arg('numViews must be a non-empty array of integers in [2, 8]');
  numViews.forEach((n, i) => checkCount(n, `numViews[${i}]`, 2, 8));
  const imageSize = checkCount(options.imageSize ?? 32, 'imageSize', 8, 512);
  const families = options.families ?? FAMILIES.slice();
  if (!Array.isArray(families) || families.length === 0) arg(`families must be a non-empty array of ${FAMILIES.join(', ')}`);
  for (const f of families) if (!FAMILIES.includes(f)) arg(`unknown family '${String(f)}' (expected one of ${FAMILIES.join(', ')})`);
  if (new Set(families).size !== families.length) arg('families must not repeat');
  const objects = options.objects ?? [3, 6];
  if (!Array.isArray(objects) || objects.length !== 2) arg('objects must be [min, max]');
  checkCount(objects[0], 'objects[0]', 2, 8);
  checkCount(objects[1], 'objects[1]', objects[0], 8);
  return { seed, sizes, numViews: numViews.slice(), imageSize, families: families.slice(), objects: [objects[0], objects[1]] };
}

/**
 * Generates the dataset in memory. Each split draws its own scenes (seeds derived from the
 * master seed, the split name and a counter), renders them, and asks each family at most
 * once per scene until every (family, numViews) cell has its quota: the split size divided
 * evenly over the families, then over the numViews values (remainders spread). A scene gets
 * the numViews value with the most samples still wanted. size, direction and count questions
 * cycle their preferred answer (yes/no, left/right, 2/3; counts strictly: a count question
 * with another answer is not asked). Scenes that yield no question are
 * dropped.
 */
export function generateDataset(options: DatasetOptions = {}): GeneratedDataset {
  const o = resolveOptions(options);
  const minPixels = defaultMinPixels(o.imageSize, o.imageSize);
  const scenes: SceneRecord[] = [];
  const views = new Map<string, RenderedView>();
  const splits = { train: [], val: [], test: [] } as Record<Split, Sample[]>;
  const counts = {} as Record<Split, SplitCounts>;

  for (const split of SPLITS) {
    const n = o.sizes[split];
    const F = o.families.length, V = o.numViews.length;
    // quota[f][v]: samples still wanted of family f with numViews o.numViews[v]
    const quota = o.families.map((_, f) => {
      const nf = Math.floor(n / F) + (f < n % F ? 1 : 0);
      return o.numViews.map((__, v) => Math.floor(nf / V) + ((v - f + V * F) % V < nf % V ? 1 : 0));
    });
    const made: Record<string, number> = {}; // per family, for answer balancing
    let remaining = n;
    const maxScenes = 50 * n + 100;
    let sceneCount = 0;
    let j = 0;
    for (; remaining > 0; j++) {
      if (j >= maxScenes) {
        const left = o.families.map((f, fi) => `${f}: ${quota[fi].reduce((x, y) => x + y, 0)}`).join(', ');
        throw new ValrError('ERR_VALR_ARGUMENT', `${split}: could not fill the family quotas after ${j} scenes (still missing ${left}); try more objects or views`);
      }
      // the views value with the most samples still wanted (ties: cycle from j)
      let vi = -1, best = 0;
      for (let k = 0; k < V; k++) {
        const v = (j + k) % V;
        const want = quota.reduce((acc, row) => acc + row[v], 0);
        if (want > best) {
          best = want;
          vi = v;
        }
      }
      const numViews = o.numViews[vi];
      const seed = hashSeed(o.seed, split, j);
      const scene = generateScene({ seed, numViews, numObjects: o.objects, width: o.imageSize, height: o.imageSize });
      // visibility from the objectId maps alone (cheap); the full render is made only for scenes that are kept
      const pixelCounts = scene.cameras.map((_, v) => objectPixelCounts({ objectId: renderObjectIds(scene, v) }, scene.objects.length));
      const vis = visibilityFromCounts(pixelCounts, minPixels);
      const rng = new Rng(hashSeed(seed, 'questions'));
      const sceneId = `${split}-${String(sceneCount).padStart(4, '0')}`;
      const images = scene.cameras.map((_, v) => `${sceneId}-v${v}`);
      const samples: Sample[] = [];
      for (let k = 0; k < F; k++) {
        const fi = (j + k) % F;
        const family = o.families[fi];
        if (quota[fi][vi] <= 0) continue;
        const count = made[family] ?? 0;
        const prefer =
          family === 'size' ? ['yes', 'no'][count % 2]
          : family === 'direction' ? ['left', 'right'][count % 2]
          : family === 'count' ? String(2 + (count % 2))
          : undefined;
        const q = makeQuestion(family, scene, vis, rng, { prefer });
        // counts must be balanced strictly: most scenes offer only 2, and a family whose
        // answer is nearly constant can be answered without looking
        if (!q || (family === 'count' && q.answer !== prefer)) continue;
        quota[fi][vi]--;
        remaining--;
        made[family] = count + 1;
        samples.push({ id: `${sceneId}-${family}`, sceneId, family, images, question: q.question, steps: q.steps, answer: q.answer, numViews });
      }
      if (samples.length === 0) continue;
      sceneCount++;
      scene.id = sceneId;
      scenes.push({ ...scene, split, numViews, images, pixelCounts });
      renderScene(scene).forEach((v, i) => views.set(images[i], v));
      splits[split].push(...samples);
    }
    const fam: Record<string, number> = {};
    for (const f of o.families) fam[f] = 0;
    const nv: Record<string, number> = {};
    for (const s of splits[split]) {
      fam[s.family]++;
      nv[s.numViews] = (nv[s.numViews] ?? 0) + 1;
    }
    counts[split] = { samples: splits[split].length, scenes: sceneCount, images: scenes.filter((s) => s.split === split).reduce((a, s) => a + s.images.length, 0), scenesTried: j, families: fam, numViews: nv };
  }

  const meta: DatasetMeta = {
    format: DATASET_FORMAT,
    version: DATASET_VERSION,
    seed: o.seed,
    imageSize: o.imageSize,
    numViews: o.numViews,
    families: o.families,
    objects: o.objects,
    visibleMinPixels: minPixels,
    backgroundDepth: BACKGROUND_DEPTH,
    floorId: FLOOR_ID,
    backgroundId: BACKGROUND_ID,
    sizes: o.sizes,
    splits: counts,
    files: { ...FILES },
  };
  return { meta, scenes, splits, views };
}

/** The tensors of views.safetensors for a set of renders. */
export function viewTensors(views: Map<string, RenderedView>): Record<string, TensorToWrite> {
  const t: Record<string, TensorToWrite> = {};
  for (const [id, v] of views) {
    const H = v.height, W = v.width;
    t[`${id}.rgb`] = { dtype: 'F32', shape: [3, H, W], data: v.rgb };
    t[`${id}.depth`] = { dtype: 'F32', shape: [H, W], data: v.depth };
    t[`${id}.objectId`] = { dtype: 'I32', shape: [H, W], data: v.objectId };
    t[`${id}.xyz`] = { dtype: 'F32', shape: [3, H, W], data: v.xyz };
  }
  return t;
}

/** Writes a generated dataset to `dir` (created if needed); meta.json goes last. */
export async function writeDataset(dir: string, ds: GeneratedDataset): Promise<void> {
  if (typeof dir !== 'string' || dir === '') arg('writeDataset: dir must be a non-empty path');
  await fs.promises.mkdir(dir, { recursive: true });
  await writeSafetensorsAtomic(path.join(dir, FILES.views), viewTensors(ds.views), { format: DATASET_FORMAT, version: String(DATASET_VERSION) });
  await writeFileAtomic(path.join(dir, FILES.scenes), JSON.stringify({ format: DATASET_FORMAT, version: DATASET_VERSION, scenes: ds.scenes }) + '\n');
  for (const split of SPLITS) await writeFileAtomic(path.join(dir, FILES[split]), toJsonl(ds.splits[split]));
  await writeFileAtomic(path.join(dir, 'meta.json'), JSON.stringify(ds.meta, null, 2) + '\n');
}

/** Generates the dataset and writes it to `options.dir`; returns its meta. */
export async function makeDataset(options: DatasetOptions & { dir: string }): Promise<DatasetMeta> {
  if (options === null || typeof options !== 'object') arg('makeDataset: options must be an object with a dir');
  if (typeof options.dir !== 'string' || options.dir === '') arg('makeDataset: options.dir must be a non-empty path');
  const ds = generateDataset(options);
  await writeDataset(options.dir, ds);
  return ds.meta;
}

// ---------------------------------------------------------------------------------------
// Loading

export interface LoadedDataset {
  dir: string;
  meta: DatasetMeta;
  scenes: SceneRecord[];
  splits: Record<Split, Sample[]>;
  /** Every image id, in scene order. */
  imageIds: string[];
  /** The render of an image id, read from views.safetensors on first use (the file is parsed once). */
  view(id: string): RenderedView;
  scene(id: string): SceneRecord;
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Validates one parsed JSONL object as a Sample; `where` prefixes errors ("file:line"). */
export function parseSample(obj: Record<string, unknown>, where: string): Sample {
  const bad = (m: string): never => arg(`${where}: ${m}`);
  if (!isStr(obj.id) || obj.id === '') bad('"id" must be a non-empty string');
  if (!isStr(obj.sceneId)) bad('"sceneId" must be a string');
  if (!isStr(obj.family) || !FAMILIES.includes(obj.family as Family)) bad(`"family" must be one of ${FAMILIES.join(', ')}`);
  if (!Array.isArray(obj.images) || obj.images.length === 0 || !obj.images.every(isStr)) bad('"images" must be a non-empty array of image ids');
  const images = obj.images as string[];
  if (!isStr(obj.question) || obj.question.trim() === '') bad('"question" must be a non-empty string');
  if (!Array.isArray(obj.steps)) bad('"steps" must be an array');
  const steps = (obj.steps as unknown[]).map((s, i) => {
    if (s === null || typeof s !== 'object' || Array.isArray(s)) bad(`steps[${i}] must be an object { "text", "view" }`);
    const st = s as Record<string, unknown>;
    if (!isStr(st.text) || st.text.trim() === '') bad(`steps[${i}].text must be a non-empty string`);
    if (!isInt(st.view) || st.view < 0 || st.view >= images.length) bad(`steps[${i}].view must be an integer in [0, ${images.length}), got ${JSON.stringify(st.view)}`);
    return { text: st.text as string, view: st.view as number };
  });
  if (!isStr(obj.answer) || obj.answer.trim() === '') bad('"answer" must be a non-empty string');
  if (obj.numViews !== images.length) bad(`"numViews" (${JSON.stringify(obj.numViews)}) must equal the number of images (${images.length})`);
  return { id: obj.id as string, sceneId: obj.sceneId as string, family: obj.family as Family, images: images.slice(), question: obj.question as string, steps, answer: obj.answer as string, numViews: images.length };
}

/**
 * Loads a dataset written by makeDataset/writeDataset (synchronously; the renders are read
 * lazily). Validates meta.json's format and version, every JSONL line (errors name the
 * file and line), that sample ids are unique and that every image a sample uses is a view
 * of a scene of the same split.
 */
export function loadDataset(dir: string): LoadedDataset {
  if (typeof dir !== 'string' || dir === '') arg('loadDataset: dir must be a non-empty path');
  const metaPath = path.join(dir, 'meta.json');
  const meta = readJsonSync(metaPath, 'dataset meta') as DatasetMeta;
  if (!meta || meta.format !== DATASET_FORMAT) arg(`${metaPath}: not a ${DATASET_FORMAT} dataset (format ${JSON.stringify(meta?.format)})`);
  if (meta.version !== DATASET_VERSION) arg(`${metaPath}: format version ${meta.version} is not supported (this package reads version ${DATASET_VERSION})`);
  const scenesPath = path.join(dir, FILES.scenes);
  const scenesJson = readJsonSync(scenesPath, 'scenes file') as { scenes?: SceneRecord[] };
  if (!scenesJson || !Array.isArray(scenesJson.scenes)) arg(`${scenesPath}: expected { "scenes": [...] }`);
  const scenes = scenesJson.scenes;
  const sceneById = new Map<string, SceneRecord>();
  const imageOwner = new Map<string, SceneRecord>();
  for (const s of scenes) {
    if (!s || !isStr(s.id) || !Array.isArray(s.images) || !SPLITS.includes(s.split)) arg(`${scenesPath}: malformed scene record ${JSON.stringify(s?.id)}`);
    if (sceneById.has(s.id)) arg(`${scenesPath}: scene id '${s.id}' repeats`);
    sceneById.set(s.id, s);
    for (const im of s.images) imageOwner.set(im, s);
  }
  const splits = {} as Record<Split, Sample[]>;
  const ids = new Set<string>();
  for (const split of SPLITS) {
    const file = path.join(dir, FILES[split]);
    splits[split] = parseJsonl(readTextSync(file, `${split} split`), file, (obj, where) => {
      const s = parseSample(obj, where);
      if (ids.has(s.id)) arg(`${where}: sample id '${s.id}' repeats`);
      ids.add(s.id);
      for (const im of s.images) {
        const owner = imageOwner.get(im);
        if (!owner) arg(`${where}: image '${im}' is not a view of any scene in scenes.json`);
        if (owner.split !== split) arg(`${where}: image '${im}' belongs to a ${owner.split} scene, not ${split}`);
      }
      return s;
    });
  }

  const viewsPath = path.join(dir, FILES.views);
  let file: SafetensorsFile | undefined;
  const view = (id: string): RenderedView => {
    if (!isStr(id) || !imageOwner.has(id)) arg(`loadDataset: unknown image id ${JSON.stringify(id)}`);
    if (!file) {
      if (!fs.existsSync(viewsPath)) arg(`${viewsPath} is missing`);
      file = readSafetensorsSync(viewsPath);
    }
    const get = (name: string, shape: number[]) => {
      const rec = file!.tensors.get(`${id}.${name}`);
      if (!rec) arg(`${viewsPath}: tensor '${id}.${name}' is missing`);
      if (rec.shape.length !== shape.length || rec.shape.some((d, i) => d !== shape[i])) {
        arg(`${viewsPath}: tensor '${id}.${name}' has shape [${rec.shape}], expected [${shape}]`);
      }
      return rec;
    };
    const rgbRec = file.tensors.get(`${id}.rgb`);
    if (!rgbRec || rgbRec.shape.length !== 3) arg(`${viewsPath}: tensor '${id}.rgb' is missing or not [3, H, W]`);
    const [, H, W] = rgbRec.shape;
    return {
      rgb: toFloat32(get('rgb', [3, H, W]), `${id}.rgb`),
      depth: toFloat32(get('depth', [H, W]), `${id}.depth`),
      objectId: toInt32(get('objectId', [H, W]), `${id}.objectId`),
      xyz: toFloat32(get('xyz', [3, H, W]), `${id}.xyz`),
      width: W,
      height: H,
    };
  };
  const scene = (id: string): SceneRecord => {
    const s = sceneById.get(id);
    if (!s) arg(`loadDataset: unknown scene id ${JSON.stringify(id)}`);
    return s;
  };
  return { dir, meta, scenes, splits, imageIds: scenes.flatMap((s) => s.images), view, scene };
}
