// Dense per-patch labels (lib/data/patch-labels.ts): hand-built objectId maps with known
// answers (majority object, ties to the lower index, the minFraction boundary, floor vs
// background with ties to the floor), agreement with a brute-force re-implementation on
// real renders, and bad inputs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BACKGROUND_CLASS,
  FLOOR_CLASS,
  NUM_KIND_CLASSES,
  NUM_SIZE_CLASSES,
  objectKindClass,
  patchLabels,
} from '../lib/data/patch-labels';
import { BACKGROUND_ID, FLOOR_ID, renderView } from '../lib/data/render';
import { COLOURS, generateScene, SHAPES, SIZES, SIZE_SCALE, type ColourName, type SceneObject, type ShapeName, type SizeName } from '../lib/data/scene';
import { assertThrowsCode, rng } from './helpers/check';

const test = suite('patch-labels');
const F = FLOOR_ID, B = BACKGROUND_ID;

function obj(index: number, colour: ColourName, shape: ShapeName, size: SizeName): SceneObject {
  const s = SIZE_SCALE[size];
  return { index, colour, shape, size, scale: s, position: [0, 0, 0], center: [0, s, 0], rotationY: 0 };
}
const OBJECTS = [obj(0, 'red', 'cube', 'small'), obj(1, 'blue', 'sphere', 'large'), obj(2, 'gray', 'cone', 'medium')];
// kind classes by hand: colour index * 4 + shape index
const KIND = [0 * 4 + 0, 2 * 4 + 1, 7 * 4 + 3];
const SIZE = [0, 2, 1];

const view = (rows: number[][]) => ({ objectId: Int32Array.from(rows.flat()), width: rows[0].length, height: rows.length });

test('class constants: 8 colours x 4 shapes, then floor and background', () => {
  assert.is(FLOOR_CLASS, 32);
  assert.is(BACKGROUND_CLASS, 33);
  assert.is(NUM_KIND_CLASSES, 34);
  assert.is(NUM_SIZE_CLASSES, 3);
  const seen = new Set<number>();
  COLOURS.forEach((c, ci) =>
    SHAPES.forEach((s, si) => {
      const k = objectKindClass({ colour: c, shape: s });
      assert.is(k, ci * SHAPES.length + si);
      seen.add(k);
    }),
  );
  assert.is(seen.size, 32, 'a bijection onto [0, 32)');
  OBJECTS.forEach((o, i) => assert.is(objectKindClass(o), KIND[i]));
});

test('4x4 view, grid 2: majority object, ties to the lower index, floor / background', () => {
  // patch (0,0): object 1 x3, floor x1       -> object 1
  // patch (0,1): object 2 x2, object 0 x2    -> tie: object 0 (lower index)
  // patch (1,0): floor x2, background x2     -> tie: floor; no object
  // patch (1,1): background x3, object 2 x1  -> object 2 (1/4 >= 0.1)
  const v = view([
    [1, 1, 2, 0],
    [1, F, 0, 2],
    [F, B, B, 2],
    [B, F, B, B],
  ]);
  const l = patchLabels(v, OBJECTS, 2);
  assert.equal(Array.from(l.kind), [KIND[1], KIND[0], FLOOR_CLASS, KIND[2]]);
  assert.equal(Array.from(l.size), [SIZE[1], SIZE[0], -100, SIZE[2]]);
  assert.ok(l.kind instanceof Int32Array && l.size instanceof Int32Array);
  // the tie goes to the lower index whichever object is met first in the patch
  const w = view([
    [0, 2, F, F],
    [2, 0, F, F],
    [B, B, B, B],
    [B, B, B, B],
  ]);
  const m = patchLabels(w, OBJECTS, 2);
  assert.equal(Array.from(m.kind), [KIND[0], FLOOR_CLASS, BACKGROUND_CLASS, BACKGROUND_CLASS]);
  assert.equal(Array.from(m.size), [SIZE[0], -100, -100, -100]);
  const w2 = view([
    [2, 0, F, F],
    [0, 2, F, F],
    [B, B, B, B],
    [B, B, B, B],
  ]);
  assert.is(patchLabels(w2, OBJECTS, 2).kind[0], KIND[0]);
});

test('minFraction: an object needs at least that share of the patch', () => {
  // one 4x4 patch (grid 1 over a 4x4 view): object 1 covers k pixels, the rest floor / background
  const make = (k: number, rest: number) => {
    const ids = new Array<number>(16).fill(rest);
    for (let i = 0; i < k; i++) ids[i] = 1;
    return { objectId: Int32Array.from(ids), width: 4, height: 4 };
  };
  // boundary at exactly 4 / 16 = 0.25
  assert.is(patchLabels(make(4, F), OBJECTS, 1, 0.25).kind[0], KIND[1], '4/16 >= 0.25');
  assert.is(patchLabels(make(3, F), OBJECTS, 1, 0.25).kind[0], FLOOR_CLASS, '3/16 < 0.25');
  assert.is(patchLabels(make(3, B), OBJECTS, 1, 0.25).kind[0], BACKGROUND_CLASS, '3/16 < 0.25, rest background');
  assert.is(patchLabels(make(3, F), OBJECTS, 1, 0.25).size[0], -100);
  // default 0.1: 2/16 = 0.125 is enough, 1/16 is not
  assert.is(patchLabels(make(2, B), OBJECTS, 1).kind[0], KIND[1]);
  assert.is(patchLabels(make(1, B), OBJECTS, 1).kind[0], BACKGROUND_CLASS);
  // the threshold applies to the majority object only: a minority object does not count
  assert.is(patchLabels(make(8, F), OBJECTS, 1, 0.5).kind[0], KIND[1], '8/16 >= 0.5');
  assert.is(patchLabels(make(7, F), OBJECTS, 1, 0.5).kind[0], FLOOR_CLASS, '7/16 < 0.5');
  // minFraction 0: any object pixel wins; minFraction > 1: never an object
  assert.is(patchLabels(make(1, F), OBJECTS, 1, 0).kind[0], KIND[1]);
  assert.is(patchLabels(make(16, F), OBJECTS, 1, 1.01).kind[0], FLOOR_CLASS);
});

test('below the threshold the floor / background majority decides, ties to the floor', () => {
  // 4x4 patch: object 0 x1 (below 0.25), floor f, background 15 - f
  for (let f = 0; f <= 15; f++) {
    const ids = [0, ...new Array<number>(f).fill(F), ...new Array<number>(15 - f).fill(B)];
    const l = patchLabels({ objectId: Int32Array.from(ids), width: 4, height: 4 }, OBJECTS, 1, 0.25);
    assert.is(l.kind[0], f >= 15 - f ? FLOOR_CLASS : BACKGROUND_CLASS, `floor ${f}`);
    assert.is(l.size[0], -100);
  }
  // all object pixels but none qualifies: 0 floor vs 0 background is a tie -> floor
  const l = patchLabels({ objectId: Int32Array.from([0, 1, 2, 1]), width: 2, height: 2 }, OBJECTS, 1, 0.6);
  assert.is(l.kind[0], FLOOR_CLASS);
});

test('a non-square view and patch order (row-major over the grid)', () => {
  // 8 wide x 4 high, grid 2: patches 4 wide x 2 high
  const v = view([
    [0, 0, 0, 0, 2, 2, 2, F],
    [0, 0, 0, 0, 2, F, F, F],
    [B, B, B, B, 1, 1, 1, 1],
    [B, B, B, 1, 1, 1, 1, 1],
  ]);
  // patch (1,0) has one object-1 pixel of 8: enough at 0.1, not at 0.2
  const l = patchLabels(v, OBJECTS, 2, 0.2);
  assert.equal(Array.from(l.kind), [KIND[0], KIND[2], BACKGROUND_CLASS, KIND[1]]);
  assert.equal(Array.from(l.size), [SIZE[0], SIZE[2], -100, SIZE[1]]);
  assert.equal(Array.from(patchLabels(v, OBJECTS, 2).kind), [KIND[0], KIND[2], KIND[1], KIND[1]]);
});

// ------------------------------------------------------------------------------------
// Brute force: for each patch, count every id in [-2, numObjects) into an array, then
// take the object with the strictly largest count scanning indices upwards.

function reference(objectId: Int32Array, W: number, H: number, objects: readonly SceneObject[], grid: number, minFraction: number) {
  const ph = H / grid, pw = W / grid;
  const kind: number[] = [], size: number[] = [];
  for (let p = 0; p < grid * grid; p++) {
    const gy = Math.floor(p / grid), gx = p % grid;
    const cnt = new Array<number>(objects.length + 2).fill(0); // [floor, background, objects...]
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        if (Math.floor(y / ph) !== gy || Math.floor(x / pw) !== gx) continue;
        const id = objectId[y * W + x];
        cnt[id === FLOOR_ID ? 0 : id === BACKGROUND_ID ? 1 : id + 2]++;
      }
    let best = -1;
    for (let i = 0; i < objects.length; i++) if (cnt[i + 2] > 0 && (best < 0 || cnt[i + 2] > cnt[best + 2])) best = i;
    if (best >= 0 && cnt[best + 2] / (ph * pw) >= minFraction - 1e-12) {
      const o = objects[best];
      kind.push(COLOURS.indexOf(o.colour) * 4 + SHAPES.indexOf(o.shape));
      size.push(SIZES.indexOf(o.size));
    } else {
      kind.push(cnt[0] >= cnt[1] ? 32 : 33);
      size.push(-100);
    }
  }
  return { kind, size };
}

test('real renders (32x32): matches the brute force at grids 1, 2, 4, 8, 16, 32', () => {
  const r = rng(11);
  let objectPatches = 0, floorPatches = 0, bgPatches = 0, views = 0;
  for (let s = 0; s < 6; s++) {
    const scene = generateScene({ seed: r.int(1, 1_000_000), numViews: 3, width: 32, height: 32 });
    for (let c = 0; c < scene.cameras.length; c++) {
      const v = renderView(scene, c);
      assert.is(v.width, 32);
      views++;
      for (const grid of [1, 2, 4, 8, 16, 32]) {
        for (const mf of grid === 4 ? [0.1, 0, 0.3, 0.5] : [0.1]) {
          const got = patchLabels(v, scene.objects, grid, mf);
          const want = reference(v.objectId, 32, 32, scene.objects, grid, mf);
          assert.equal(Array.from(got.kind), want.kind, `scene ${s} view ${c} grid ${grid} minFraction ${mf}: kind`);
          assert.equal(Array.from(got.size), want.size, `scene ${s} view ${c} grid ${grid} minFraction ${mf}: size`);
          if (grid === 4 && mf === 0.1) {
            objectPatches += want.kind.filter((k) => k < 32).length;
            floorPatches += want.kind.filter((k) => k === 32).length;
            bgPatches += want.kind.filter((k) => k === 33).length;
          }
        }
      }
      // grid 32: one pixel per patch, so the labels are the id map itself
      const px = patchLabels(v, scene.objects, 32);
      for (let i = 0; i < 32 * 32; i++) {
        const id = v.objectId[i];
        assert.is(px.kind[i], id >= 0 ? objectKindClass(scene.objects[id]) : id === FLOOR_ID ? FLOOR_CLASS : BACKGROUND_CLASS);
      }
    }
  }
  // the renders exercise every branch
  assert.is(views, 18);
  assert.ok(objectPatches > 20, `object patches: ${objectPatches}`);
  assert.ok(floorPatches > 20, `floor patches: ${floorPatches}`);
  assert.ok(bgPatches > 0, `background patches: ${bgPatches}`);
});

test('random id maps with many ties match the brute force', () => {
  const r = rng(5);
  const objects = Array.from({ length: 6 }, (_, i) => obj(i, r.pick(COLOURS), r.pick(SHAPES), r.pick(SIZES)));
  for (let trial = 0; trial < 200; trial++) {
    const grid = r.pick([1, 2, 4]), W = grid * r.pick([1, 2, 3, 4]), H = grid * r.pick([1, 2, 3, 4]);
    // few distinct values per map so that ties are common
    const palette = Array.from({ length: r.int(1, 4) }, () => r.int(-2, 5));
    const ids = Int32Array.from({ length: W * H }, () => r.pick(palette));
    const mf = r.pick([0, 0.1, 0.25, 0.5, 1 / 3]);
    const got = patchLabels({ objectId: ids, width: W, height: H }, objects, grid, mf);
    const want = reference(ids, W, H, objects, grid, mf);
    assert.equal(Array.from(got.kind), want.kind, `trial ${trial}: kind`);
    assert.equal(Array.from(got.size), want.size, `trial ${trial}: size`);
  }
});

test('errors: a grid that does not divide the view, an object the scene lacks', () => {
  const v = view([
    [0, 0, 1, 1],
    [0, 0, 1, 1],
    [F, F, B, B],
    [F, F, B, B],
  ]);
  for (const g of [3, 5, 8, 0, -2, 1.5, NaN]) assertThrowsCode(() => patchLabels(v, OBJECTS, g), 'ERR_VALR_ARGUMENT', /grid/);
  // 8 wide x 4 high: grid 8 divides the width only
  assertThrowsCode(() => patchLabels({ objectId: new Int32Array(32).fill(F), width: 8, height: 4 }, OBJECTS, 8), 'ERR_VALR_ARGUMENT');
  // object 3 in a scene of 3 objects (indices 0..2)
  const bad = view([
    [3, 3, F, F],
    [3, 3, F, F],
    [F, F, B, B],
    [F, F, B, B],
  ]);
  assertThrowsCode(() => patchLabels(bad, OBJECTS, 2), 'ERR_VALR_ARGUMENT', /object 3/);
  assertThrowsCode(() => patchLabels(v, [], 2), 'ERR_VALR_ARGUMENT', /object 0/);
});

test.run();
