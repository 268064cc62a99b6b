// Question families modelled on VSI-Bench's (object count, relative distance, relative
// direction, appearance order, size comparison), asked about a multi-view scene, each with a
// templated chain of thought of one step per view (step i talks about view i and names it)
// and a single-word answer.
//
// Every question is built so that one view is not enough: the objects it is about are never
// all visible together in a single view (count: no single view shows every counted object;
// order: the objects first appear in different views). Objects are named by colour + shape,
// which is unique within a scene. Objects that are only partly visible in some view (a few
// pixels, below the visibility threshold) are never asked about, so what the views show and
// what the answer assumes agree.
//
// Facts behind the answers (the tests recompute them from scenes.json):
// - visible in view v: at least `minPixels` pixels of the object in view v's objectId map;
// - count: the number of distinct objects with the attribute visible in at least one view;
// - distance: 3D Euclidean distance between bounding-box centres (SceneObject.center);
// - direction: on the floor plane, standing at A's centre facing B's centre, C is on the right
//   when dot(C - A, right) > 0 with right = (-f.z, 0, f.x), f = B - A (y up);
// - order: the first view index in which each object is visible; the earliest is unique;
// - size: size classes small < medium < large (each class is larger in every extent).
import { ValrError } from '../errors';
import type { Rng } from './prng';
import { COLOURS, objectName, projectPoint, SHAPES, SIZES, type Scene, type SceneObject } from './scene';

export type Family = 'count' | 'distance' | 'direction' | 'order' | 'size';
export const FAMILIES: readonly Family[] = Object.freeze(['count', 'distance', 'direction', 'order', 'size'] as Family[]);

/** One chain-of-thought step: its text and the index (into the sample's images) of the view it is about. */
export interface Step {
  text: string;
  view: number;
}

export interface Question {
  family: Family;
  question: string;
  steps: Step[];
  /** One word: a digit, a colour, left/right or yes/no. */
  answer: string;
  /** Indices of the scene objects the question is about (count: the objects counted). */
  objects: number[];
}

export interface Visibility {
  /** [view][object]: the object covers at least minPixels pixels of the view. */
  visible: boolean[][];
  /** [view][object]: the object covers some pixels, but fewer than minPixels. */
  partial: boolean[][];
}

/** Visibility threshold for a W x H render: 1.5% of the pixels, at least 2 (16 at 32x32, 62 at 64x64). */
export function defaultMinPixels(width: number, height: number): number {
  return Math.max(2, Math.ceil(0.015 * width * height));
}

/** Visibility from per-view object pixel counts ([view][object]). */
export function visibilityFromCounts(pixelCounts: readonly (readonly number[])[], minPixels: number): Visibility {
  return {
    visible: pixelCounts.map((row) => row.map((c) => c >= minPixels)),
    partial: pixelCounts.map((row) => row.map((c) => c > 0 && c < minPixels)),
  };
}

const the = (o: SceneObject) => `the ${objectName(o)}`;

/** "a", "a and b", "a, b and c". */
function listing(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function pluralShape(shape: string): string {
  return `${shape}s`;
}

interface Ctx {
  scene: Scene;
  vis: Visibility;
  numViews: number;
  eligible: boolean[];
  /** Per object: bit v set when visible in view v. */
  masks: number[];
  prefer?: string;
}

/** Objects of `objs` visible in view v, left to right by the projected centre (ties: index). */
function visibleInView(ctx: Ctx, v: number, objs: readonly SceneObject[]): SceneObject[] {
  const cam = ctx.scene.cameras[v];
  return objs
    .filter((o) => ctx.vis.visible[v][o.index])
    .map((o) => ({ o, u: projectPoint(cam, o.center).u }))
    .sort((a, b) => a.u - b.u || a.o.index - b.o.index)
    .map((e) => e.o);
}

/** "I see the red cube", "I see, from left to right, the red cube and the blue sphere", or "I see <none>". */
function describe(seen: readonly SceneObject[], none: string): string {
  if (seen.length === 0) return `I see ${none}`;
  if (seen.length === 1) return `I see ${the(seen[0])}`;
  return `I see, from left to right, ${listing(seen.map(the))}`;
}

function noneWord(n: number): string {
  return n === 2 ? 'neither of them' : 'none of them';
}

/** No single view shows all of `objs`. */
function needsSeveralViews(ctx: Ctx, objs: readonly SceneObject[]): boolean {
  let m = -1;
  for (const o of objs) m &= ctx.masks[o.index];
  return m === 0;
}

function firstView(ctx: Ctx, o: SceneObject): number {
  const m = ctx.masks[o.index];
  return m === 0 ? -1 : 31 - Math.clz32(m & -m);
}

function dist3(a: SceneObject, b: SceneObject): number {
  return Math.hypot(a.center[0] - b.center[0], a.center[1] - b.center[1], a.center[2] - b.center[2]);
}

/** Plain observation steps: step v lists which of `objs` view v shows. */
function observationSteps(ctx: Ctx, objs: readonly SceneObject[]): Step[] {
  const steps: Step[] = [];
  for (let v = 0; v < ctx.numViews; v++) {
    const seen = visibleInView(ctx, v, objs);
    steps.push({ text: `In view ${v} ${describe(seen, noneWord(objs.length))}.`, view: v });
  }
  return steps;
}

function conclude(steps: Step[], sentence: string): Step[] {
  const last = steps[steps.length - 1];
  last.text = `${last.text} ${sentence}`;
  return steps;
}

function makeCount(ctx: Ctx, rng: Rng): Question | null {
  const { scene } = ctx;
  type Attr = { kind: 'colour' | 'shape'; value: string };
  const attrs: Attr[] = [
    ...COLOURS.map((value) => ({ kind: 'colour' as const, value })),
    ...SHAPES.map((value) => ({ kind: 'shape' as const, value })),
  ];
  const candidates: { attr: Attr; matching: SceneObject[]; total: number }[] = [];
  for (const attr of attrs) {
    const matching = scene.objects.filter((o) => (attr.kind === 'colour' ? o.colour : o.shape) === attr.value);
    // every matching object must be clearly visible or clearly absent in every view
    if (matching.length === 0 || matching.some((o) => ctx.vis.partial.some((row) => row[o.index]))) continue;
    const counted = matching.filter((o) => firstView(ctx, o) >= 0);
    if (counted.length === 0) continue;
    let maxInOne = 0;
    for (let v = 0; v < ctx.numViews; v++) maxInOne = Math.max(maxInOne, counted.filter((o) => ctx.vis.visible[v][o.index]).length);
    if (counted.length <= maxInOne) continue; // one view would be enough
    candidates.push({ attr, matching: counted, total: counted.length });
  }
  if (candidates.length === 0) return null;
  let pool = candidates;
  const want = Number(ctx.prefer);
  if (ctx.prefer !== undefined && Number.isInteger(want)) {
    const gap = Math.min(...candidates.map((c) => Math.abs(c.total - want)));
    pool = candidates.filter((c) => Math.abs(c.total - want) === gap);
  }
  const { attr, matching, total } = rng.pick(pool);
  const thing = (n: number) =>
    attr.kind === 'colour' ? `${attr.value} ${n === 1 ? 'object' : 'objects'}` : n === 1 ? attr.value : pluralShape(attr.value);
  const seenSoFar = new Set<number>();
  const steps: Step[] = [];
  for (let v = 0; v < ctx.numViews; v++) {
    const seen = visibleInView(ctx, v, matching);
    let fresh = 0;
    for (const o of seen) {
      if (!seenSoFar.has(o.index)) {
        seenSoFar.add(o.index);
        fresh++;
      }
    }
    const what = seen.length === 0 ? `no ${thing(2)}` : `${seen.length} ${thing(seen.length)}: ${listing(seen.map(the))}`;
    steps.push({ text: `In view ${v} I see ${what}; ${fresh} new, ${seenSoFar.size} so far.`, view: v });
  }
  conclude(steps, `So there ${total === 1 ? 'is' : 'are'} ${total} ${thing(total)} in total.`);
  return {
    family: 'count',
    question: `How many ${thing(2)} are there across the views?`,
    steps,
    answer: String(total),
    objects: matching.map((o) => o.index),
  };
}

function eligibleObjects(ctx: Ctx): SceneObject[] {
  return ctx.scene.objects.filter((o) => ctx.eligible[o.index]);
}

function makeDistance(ctx: Ctx, rng: Rng): Question | null {
  const objs = eligibleObjects(ctx);
  const options: [SceneObject, SceneObject, SceneObject][] = [];
  for (const a of objs) {
    for (const b of objs) {
      for (const c of objs) {
        if (a === b || a === c || b.index >= c.index || b.colour === c.colour) continue;
        const db = dist3(a, b), dc = dist3(a, c);
        if (Math.abs(db - dc) < Math.max(0.3, 0.15 * Math.max(db, dc))) continue;
        if (!needsSeveralViews(ctx, [a, b, c])) continue;
        options.push([a, b, c]);
      }
    }
  }
  if (options.length === 0) return null;
  const [a, b0, c0] = rng.pick(options);
  const [b, c] = rng.float() < 0.5 ? [b0, c0] : [c0, b0];
  const closer = dist3(a, b) < dist3(a, c) ? b : c;
  const steps = conclude(observationSteps(ctx, [a, b, c]), `So the ${objectName(closer)} is closer to the ${objectName(a)}.`);
  return {
    family: 'distance',
    question: `Which is closer to the ${objectName(a)}: the ${objectName(b)} or the ${objectName(c)}?`,
    steps,
    answer: closer.colour,
    objects: [a.index, b.index, c.index],
  };
}

/** 'left' | 'right' | null (too close to straight ahead or behind to say). */
export function sideOf(a: SceneObject, b: SceneObject, c: SceneObject): 'left' | 'right' | null {
  const fx = b.center[0] - a.center[0], fz = b.center[2] - a.center[2];
  const cx = c.center[0] - a.center[0], cz = c.center[2] - a.center[2];
  const nf = Math.hypot(fx, fz), nc = Math.hypot(cx, cz);
  if (nf < 1e-9 || nc < 1e-9) return null;
  const s = (-fz * cx + fx * cz) / (nf * nc); // dot(c, right) / (|f| |c|) = sin of the angle
  if (Math.abs(s) < 0.3) return null;
  return s > 0 ? 'right' : 'left';
}

function makeDirection(ctx: Ctx, rng: Rng): Question | null {
  const objs = eligibleObjects(ctx);
  const options: [SceneObject, SceneObject, SceneObject, 'left' | 'right'][] = [];
  for (const a of objs) {
    for (const b of objs) {
      for (const c of objs) {
        if (a === b || a === c || b === c) continue;
        const side = sideOf(a, b, c);
        if (!side || !needsSeveralViews(ctx, [a, b, c])) continue;
        options.push([a, b, c, side]);
      }
    }
  }
  if (options.length === 0) return null;
  const want = ctx.prefer === 'left' || ctx.prefer === 'right' ? ctx.prefer : rng.float() < 0.5 ? 'left' : 'right';
  const pool = options.some((o) => o[3] === want) ? options.filter((o) => o[3] === want) : options;
  const [a, b, c, side] = rng.pick(pool);
  const steps = conclude(
    observationSteps(ctx, [a, b, c]),
    `So, facing the ${objectName(b)} from the ${objectName(a)}, the ${objectName(c)} is on the ${side}.`,
  );
  return {
    family: 'direction',
    question: `Standing at the ${objectName(a)} facing the ${objectName(b)}, is the ${objectName(c)} to the left or right?`,
    steps,
    answer: side,
    objects: [a.index, b.index, c.index],
  };
}

function makeOrder(ctx: Ctx, rng: Rng): Question | null {
  const objs = eligibleObjects(ctx);
  const triples: SceneObject[][] = [], pairs: SceneObject[][] = [];
  const firstOk = (set: SceneObject[]) => {
    const f = set.map((o) => firstView(ctx, o));
    const m = Math.min(...f);
    return f.filter((x) => x === m).length === 1;
  };
  for (let i = 0; i < objs.length; i++) {
    for (let j = i + 1; j < objs.length; j++) {
      if (objs[i].colour === objs[j].colour) continue;
      if (firstOk([objs[i], objs[j]])) pairs.push([objs[i], objs[j]]);
      for (let k = j + 1; k < objs.length; k++) {
        if (objs[k].colour === objs[i].colour || objs[k].colour === objs[j].colour) continue;
        if (firstOk([objs[i], objs[j], objs[k]])) triples.push([objs[i], objs[j], objs[k]]);
      }
    }
  }
  const pool = triples.length ? triples : pairs;
  if (pool.length === 0) return null;
  const set = rng.shuffle(rng.pick(pool).slice());
  let first = set[0];
  for (const o of set) if (firstView(ctx, o) < firstView(ctx, first)) first = o;
  const seenSoFar = new Set<number>();
  const steps: Step[] = [];
  for (let v = 0; v < ctx.numViews; v++) {
    const seen = visibleInView(ctx, v, set);
    const fresh = seen.filter((o) => !seenSoFar.has(o.index));
    for (const o of fresh) seenSoFar.add(o.index);
    const news = fresh.length ? `new: ${listing(fresh.map(the))}` : 'nothing new';
    steps.push({ text: `In view ${v} ${describe(seen, noneWord(set.length))}; ${news}.`, view: v });
  }
  conclude(steps, `So the ${objectName(first)} appears first.`);
  const names = set.map(the);
  const question = `Which appears first across the views: ${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}?`;
  return { family: 'order', question, steps, answer: first.colour, objects: set.map((o) => o.index) };
}

function makeSize(ctx: Ctx, rng: Rng): Question | null {
  const objs = eligibleObjects(ctx);
  const options: [SceneObject, SceneObject][] = [];
  for (let i = 0; i < objs.length; i++) {
    for (let j = i + 1; j < objs.length; j++) {
      if (objs[i].size === objs[j].size || !needsSeveralViews(ctx, [objs[i], objs[j]])) continue;
      options.push([objs[i], objs[j]]);
    }
  }
  if (options.length === 0) return null;
  const [p, q] = rng.pick(options);
  // p is the first in scene order; orient the pair so the answer is the preferred one
  const pBigger = SIZES.indexOf(p.size) > SIZES.indexOf(q.size);
  const want = ctx.prefer === 'yes' || ctx.prefer === 'no' ? ctx.prefer === 'yes' : rng.float() < 0.5;
  const [a, b] = pBigger === want ? [p, q] : [q, p];
  const bigger = SIZES.indexOf(a.size) > SIZES.indexOf(b.size);
  const steps: Step[] = [];
  for (let v = 0; v < ctx.numViews; v++) {
    const seen = visibleInView(ctx, v, [a, b]);
    const what = seen.length === 0 ? 'neither of them' : seen.map((o) => `${the(o)}, which is ${o.size}`).join(', and ');
    steps.push({ text: `In view ${v} I see ${what}.`, view: v });
  }
  conclude(steps, `So the ${objectName(a)} is ${bigger ? '' : 'not '}bigger than the ${objectName(b)}.`);
  return {
    family: 'size',
    question: `Is the ${objectName(a)} bigger than the ${objectName(b)}?`,
    steps,
    answer: bigger ? 'yes' : 'no',
    objects: [a.index, b.index],
  };
}

export interface QuestionOptions {
  /**
   * An answer to aim for where the family can choose: 'left'/'right' for direction (when the
   * scene allows), 'yes'/'no' for size (always met), a number for count (the closest count
   * the scene offers). Lets a dataset balance its answers.
   */
  prefer?: string;
}

const MAKERS: Record<Family, (ctx: Ctx, rng: Rng) => Question | null> = {
  count: makeCount,
  distance: makeDistance,
  direction: makeDirection,
  order: makeOrder,
  size: makeSize,
};

/**
 * A question of `family` about the scene as its views show it, or null when the scene
 * admits none (e.g. every candidate set of objects is visible together in one view).
 * `vis` must have one row per camera and one column per object.
 */
export function makeQuestion(family: Family, scene: Scene, vis: Visibility, rng: Rng, options: QuestionOptions = {}): Question | null {
  if (!Object.prototype.hasOwnProperty.call(MAKERS, family)) {
    throw new ValrError('ERR_VALR_ARGUMENT', `makeQuestion: unknown family '${String(family)}' (expected one of ${FAMILIES.join(', ')})`);
  }
  const numViews = scene.cameras.length;
  const n = scene.objects.length;
  if (numViews > 30) throw new ValrError('ERR_VALR_ARGUMENT', `makeQuestion: at most 30 views, got ${numViews}`);
  for (const key of ['visible', 'partial'] as const) {
    const rows = vis?.[key];
    if (!Array.isArray(rows) || rows.length !== numViews || rows.some((r) => !Array.isArray(r) || r.length !== n)) {
      throw new ValrError('ERR_VALR_SHAPE', `makeQuestion: visibility.${key} must be [${numViews} views][${n} objects]`);
    }
  }
  const eligible = scene.objects.map(
    (o) => vis.visible.some((row) => row[o.index]) && !vis.partial.some((row) => row[o.index]),
  );
  const masks = scene.objects.map((o) => vis.visible.reduce((m, row, v) => (row[o.index] ? m | (1 << v) : m), 0));
  return MAKERS[family]({ scene, vis, numViews, eligible, masks, prefer: options.prefer }, rng);
}
