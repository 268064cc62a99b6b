// REPA teachers: geometry (from renderer ground truth), appearance (seeded random conv
// net), the model's own vision tower, precomputed features in safetensors, and the
// registry's cache. The scenes are ray-cast here (two boxes on a floor, seen by several
// pinhole cameras) so the tests do not depend on lib/data.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runtime, scope } from '../lib/index';
import { writeSafetensorsAtomic } from '../lib/io/safetensors';
import { VisionTower, type VisionConfig } from '../lib/nn/vit';
import {
  AppearanceTeacher,
  CachedTeacher,
  GeometryTeacher,
  LruCache,
  OwnVisionTeacher,
  PrecomputedTeacher,
  geometryLayout,
  geometryStandardization,
  makeTeacher,
  makeTeachers,
  writePrecomputedTeacher,
  type RenderedView,
  type Teacher,
} from '../lib/teachers';
import { assertBitsEqual, assertClose, assertThrowsCode, rng } from './helpers/check';

// ------------------------------------------------------------------------------------
// A tiny ray caster: floor z = 0 on |x|, |y| <= 3 (background beyond), two boxes.

type Vec = [number, number, number];
const sub = (a: Vec, b: Vec): Vec => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const cross = (a: Vec, b: Vec): Vec => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a: Vec): Vec => {
  const l = Math.hypot(...a);
  return [a[0] / l, a[1] / l, a[2] / l];
};
interface Box {
  lo: Vec;
  hi: Vec;
  color: Vec;
}
const BOXES: Box[] = [
  { lo: [-1.6, -0.6, 0], hi: [-0.2, 0.6, 1.4], color: [0.9, 0.2, 0.2] }, // object 0
  { lo: [0.2, -0.6, 0], hi: [1.6, 0.6, 1.3], color: [0.2, 0.3, 0.9] }, // object 1
];
const S = 24; // image side
const LIGHT = norm([0.3, -0.5, 1]);

function render(eye: Vec, options: { boxes?: Box[]; size?: number } = {}): RenderedView {
  const boxes = options.boxes ?? BOXES, W = options.size ?? S, H = W, HW = H * W;
  const f = norm(sub([0, 0, 0.5], eye)), r = norm(cross(f, [0, 0, 1])), d = cross(f, r); // x right, y down, z forward
  const focal = W * 1.5;
  const v: RenderedView = {
    rgb: new Float32Array(3 * HW),
    depth: new Float32Array(HW),
    objectId: new Int32Array(HW),
    xyz: new Float32Array(3 * HW),
    width: W,
    height: H,
  };
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const u = (x + 0.5 - W / 2) / focal, w = (y + 0.5 - H / 2) / focal;
      const dir = norm([f[0] + u * r[0] + w * d[0], f[1] + u * r[1] + w * d[1], f[2] + u * r[2] + w * d[2]]);
      let best = Infinity, id = -2, n: Vec = [0, 0, 0], color: Vec = [0.05, 0.05, 0.1];
      if (dir[2] < 0) {
        const t = -eye[2] / dir[2], px = eye[0] + t * dir[0], py = eye[1] + t * dir[1];
        if (Math.abs(px) <= 3 && Math.abs(py) <= 3) (best = t), (id = -1), (n = [0, 0, 1]), (color = [0.6, 0.6, 0.55]);
      }
      boxes.forEach((b, k) => {
        let t0 = -Infinity, t1 = Infinity, axis = 0;
        for (let a = 0; a < 3; a++) {
          const ta = (b.lo[a] - eye[a]) / dir[a], tb = (b.hi[a] - eye[a]) / dir[a];
          const lo = Math.min(ta, tb), hi = Math.max(ta, tb);
          if (lo > t0) (t0 = lo), (axis = a);
          t1 = Math.min(t1, hi);
        }
        if (t0 <= t1 && t0 > 0 && t0 < best) {
          best = t0;
          id = k;
          n = [0, 0, 0];
          n[axis] = dir[axis] > 0 ? -1 : 1;
          color = b.color;
        }
      });
      const p = y * W + x;
      v.objectId[p] = id;
      v.depth[p] = id === -2 ? 1e4 : best;
      const shade = id === -2 ? 1 : 0.35 + 0.65 * Math.max(0, n[0] * LIGHT[0] + n[1] * LIGHT[1] + n[2] * LIGHT[2]);
      for (let c = 0; c < 3; c++) {
        v.rgb[c * HW + p] = color[c] * shade;
        v.xyz[c * HW + p] = id === -2 ? 0 : eye[c] + best * dir[c];
      }
    }
  return v;
}

const EYES: Record<string, Vec> = {
  front: [0, -4.5, 3.2],
  side: [2.2, -4, 3],
  back: [0.3, 4.5, 3.4], // the boxes swap sides in the image
};
const VIEWS = new Map<string, RenderedView>(Object.entries(EYES).map(([k, e]) => [k, render(e)]));
// the same content under another id; a scene with the boxes swapped; a single-box scene
VIEWS.set('front-copy', structuredClone(VIEWS.get('front')!));
VIEWS.set('swapped', render(EYES.front, { boxes: [BOXES[1], BOXES[0]] }));
VIEWS.set('one-box', render(EYES.front, { boxes: [BOXES[0]] }));

function counted() {
  const calls = new Map<string, number>();
  const view = (id: string): RenderedView => {
    calls.set(id, (calls.get(id) ?? 0) + 1);
    const v = VIEWS.get(id);
    if (!v) throw new Error(`no view ${id}`);
    return v;
  };
  return { view, calls };
}
const view = (id: string) => VIEWS.get(id)!;

function allFinite(a: Float32Array): boolean {
  return a.every(Number.isFinite);
}
function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function row(f: Float32Array, p: number, dim: number): Float32Array {
  return f.subarray(p * dim, (p + 1) * dim);
}

// ------------------------------------------------------------------------------------
const geo = suite('teachers: geometry');
const M = 4;
const geometry = new GeometryTeacher(view, { grid: [4, 4], maxObjects: M });
const rawGeometry = new GeometryTeacher(view, { grid: [4, 4], maxObjects: M, standardize: false });
const L = geometryLayout(M);

geo('shape, dim = 11 + maxObjects, finite, deterministic, batch stacks', () => {
  assert.is(geometry.dim, 15);
  assert.equal([...geometry.grid], [4, 4]);
  const a = geometry.features('front');
  assert.is(a.length, 16 * 15);
  assert.ok(allFinite(a));
  assertBitsEqual(geometry.features('front'), a, 'repeat');
  assertBitsEqual(new GeometryTeacher(view, { grid: [4, 4], maxObjects: M }).features('front'), a, 'new instance');
  const b = geometry.batch(['side', 'front', 'back']);
  assert.is(b.length, 3 * 16 * 15);
  assertBitsEqual(b.subarray(16 * 15, 2 * 16 * 15), a, 'batch row 1');
  for (const id of VIEWS.keys()) assert.ok(allFinite(geometry.features(id)), id);
});

geo('raw features are consistent; standardisation uses the fixed constants', () => {
  const raw = rawGeometry.features('side'), std = geometry.features('side');
  const { mean, std: sd } = geometryStandardization(M);
  for (let p = 0; p < 16; p++) {
    const r = row(raw, p, L.dim);
    const fr = r.subarray(L.fractions, L.fractions + 3);
    assert.ok(Math.abs(fr[0] + fr[1] + fr[2] - 1) < 1e-6, 'fractions sum to 1');
    const idSum = r.subarray(L.identity).reduce((s, x) => s + x, 0);
    assert.ok(Math.abs(idSum - fr[2]) < 1e-6, 'identity mass = object fraction');
    assert.ok(r[L.depthMean] > 0 && r[L.depthMean] <= 1 && r[L.depthSpread] >= 0 && r[L.depthSpread] <= 0.5);
    assert.ok(Math.hypot(r[L.normal], r[L.normal + 1], r[L.normal + 2]) <= 1 + 1e-6);
    for (let k = 0; k < L.dim; k++) assert.ok(Math.abs(std[p * L.dim + k] - (r[k] - mean[k]) / sd[k]) < 1e-4);
  }
  // the top rows see background beyond the floor, the bottom rows floor only
  const top = row(raw, 0, L.dim), bottom = row(raw, 12, L.dim);
  assert.ok(top[L.fractions + 1] > 0.5, `top-left patch is mostly background (${top[L.fractions + 1]})`);
  assert.is(bottom[L.fractions], 1, 'bottom-left patch is all floor');
  // floor normals point up in the world frame, from every camera
  for (const id of ['front', 'side', 'back']) {
    const r = row(rawGeometry.features(id), 12, L.dim);
    assertClose(r.subarray(L.normal, L.normal + 3), [0, 0, 1], 1e-4, 0, `${id} floor normal`);
    assert.ok(Math.abs(r[L.position + 2]) < 1e-5, 'floor points have z = 0');
  }
});

/** Patches whose pixels all belong to object k (raw identity fraction 1), and those it dominates. */
function patchesOf(id: string, k: number, min: number): number[] {
  const raw = rawGeometry.features(id), out: number[] = [];
  for (let p = 0; p < 16; p++) if (raw[p * L.dim + L.identity + k] >= min) out.push(p);
  return out;
}

geo('object identity is consistent across views of the same scene', () => {
  const ident = (f: Float32Array, p: number) => [...row(f, p, L.dim).subarray(L.identity)];
  const ids = ['front', 'side', 'back'];
  const f0 = geometry.features('front'), fb = geometry.features('back');
  // reference identity vectors: a patch filled by object 1 (front) and one filled by object 0 (back)
  const ref1 = ident(f0, patchesOf('front', 1, 1)[0]), ref0 = ident(fb, patchesOf('back', 0, 1)[0]);
  assert.not.equal(ref0, ref1);
  for (const k of [0, 1]) {
    const ref = k ? ref1 : ref0;
    let views = 0;
    for (const id of ids) {
      const solid = patchesOf(id, k, 1);
      if (solid.length) views++;
      const f = geometry.features(id), raw = rawGeometry.features(id);
      for (const p of solid) {
        assert.equal(ident(f, p), ref, `${id} patch ${p}: object ${k}'s identity`);
        // world-frame positions: the patch's mean hit point lies on box k from any camera
        const pos = row(raw, p, L.dim).subarray(L.position, L.position + 3);
        for (let a = 0; a < 3; a++) assert.ok(pos[a] >= BOXES[k].lo[a] - 1e-4 && pos[a] <= BOXES[k].hi[a] + 1e-4, `${id} patch ${p} position ${pos}`);
      }
      // every patch the object dominates has its largest identity slot at k, in every view
      const dominated = patchesOf(id, k, 0.5);
      assert.ok(dominated.length >= 2, `${id}: object ${k} dominates some patches`);
      for (const p of dominated) {
        const slots = ident(f, p);
        assert.is(slots.indexOf(Math.max(...slots)), k, `${id} patch ${p}`);
      }
    }
    assert.ok(views >= 2, `object ${k} fills whole patches in ${views} views`);
  }
  // object 1 is right of object 0 from the front, left of it from the back
  const col = (id: string, k: number) => patchesOf(id, k, 0.5).reduce((s, p) => s + (p % 4), 0) / patchesOf(id, k, 0.5).length;
  assert.ok(col('front', 1) > col('front', 0) && col('back', 1) < col('back', 0));
  // the same pixels with the boxes' indices swapped: the identity mass moves to the other slot
  assert.equal(ident(geometry.features('swapped'), patchesOf('front', 1, 1)[0]), ref0);
  const fs0 = geometry.features('swapped');
  for (let p = 0; p < 16; p++) {
    for (let k = 0; k < L.identity; k++) assert.is(fs0[p * L.dim + k], f0[p * L.dim + k], 'only identity changes');
  }
});

geo('different content differs, identical content is equal', () => {
  assertBitsEqual(geometry.features('front-copy'), geometry.features('front'), 'copy');
  assert.ok(maxDiff(geometry.features('front'), geometry.features('side')) > 0.5);
  assert.ok(maxDiff(geometry.features('front'), geometry.features('one-box')) > 0.5);
  // features of one image never depend on other images
  const fresh = new GeometryTeacher(view, { grid: [4, 4], maxObjects: M });
  fresh.features('back');
  assertBitsEqual(fresh.features('front'), geometry.features('front'));
});

geo('objects past maxObjects share slot id % M; odd grids pool adaptively; errors', () => {
  const v = view('front'), folded = structuredClone(v);
  folded.objectId = v.objectId.map((id) => (id === 1 ? 5 : id)); // 5 % 4 = 1
  const t = new GeometryTeacher(() => folded, { grid: [4, 4], maxObjects: M });
  assertBitsEqual(t.features('x'), geometry.features('front'));
  const odd = new GeometryTeacher(view, { grid: [5, 7], maxObjects: 2 });
  const f = odd.features('side');
  assert.is(f.length, 35 * 13);
  assert.ok(allFinite(f));
  assertThrowsCode(() => new GeometryTeacher(view, { grid: [0, 4], maxObjects: 2 }), 'ERR_VALR_ARGUMENT');
  assertThrowsCode(() => new GeometryTeacher(view, { grid: [4, 4], maxObjects: 0 }), 'ERR_VALR_ARGUMENT');
  const broken = { ...v, depth: new Float32Array(3) };
  assertThrowsCode(() => new GeometryTeacher(() => broken, { grid: [4, 4], maxObjects: 2 }).features('b'), 'ERR_VALR_SHAPE', /'b' depth/);
});

// ------------------------------------------------------------------------------------
const app = suite('teachers: appearance');
const appearance = new AppearanceTeacher(view, { grid: [4, 4], dim: 32, seed: 7 });

app('shape, finite, a fixed function of the seed', () => {
  const a = appearance.features('front');
  assert.is(a.length, 16 * 32);
  assert.ok(allFinite(a));
  assertBitsEqual(appearance.features('front'), a, 'repeat');
  assertBitsEqual(new AppearanceTeacher(view, { grid: [4, 4], dim: 32, seed: 7 }).features('front'), a, 'same seed');
  const other = new AppearanceTeacher(view, { grid: [4, 4], dim: 32, seed: 8 }).features('front');
  assert.ok(maxDiff(other.subarray(0), a) > 0.5, 'different seed, different features');
  // colour statistics do not depend on the seed
  for (let p = 0; p < 16; p++) assertBitsEqual(row(other, p, 32).subarray(26), row(a, p, 32).subarray(26), 'colour stats');
  const b = appearance.batch(['side', 'front']);
  assertBitsEqual(b.subarray(16 * 32), a, 'batch');
});

app('different content differs, identical content is equal, patches differ', () => {
  assertBitsEqual(appearance.features('front-copy'), appearance.features('front'));
  assertBitsEqual(appearance.features('swapped'), appearance.features('front'), 'same pixels, other object ids');
  assert.ok(maxDiff(appearance.features('front'), appearance.features('one-box')) > 0.5);
  assert.ok(maxDiff(appearance.features('front'), appearance.features('side')) > 0.5);
  const f = appearance.features('front');
  assert.ok(maxDiff(row(f, 0, 32), row(f, 12, 32)) > 0.5, 'background and floor patches differ');
  for (const id of VIEWS.keys()) assert.ok(allFinite(appearance.features(id)), id);
});

app('layout: layer-normed projection, then colour mean and std', () => {
  const v = view('front'), f = appearance.features('front');
  for (const p of [0, 5, 12]) {
    const r = row(f, p, 32), y = r.subarray(0, 26);
    const mean = y.reduce((s, x) => s + x, 0) / 26;
    assert.ok(Math.abs(mean) < 1e-4, 'projection part has zero mean');
    const gy = Math.floor(p / 4), gx = p % 4;
    for (let c = 0; c < 3; c++) {
      const px: number[] = [];
      for (let yy = gy * 6; yy < gy * 6 + 6; yy++) for (let x = gx * 6; x < gx * 6 + 6; x++) px.push(v.rgb[c * S * S + yy * S + x]);
      const m = px.reduce((s, x) => s + x, 0) / px.length;
      const sd = Math.sqrt(px.reduce((s, x) => s + (x - m) ** 2, 0) / px.length);
      assert.ok(Math.abs(r[26 + c] - (m - 0.5) / 0.25) < 1e-4, 'colour mean');
      assert.ok(Math.abs(r[29 + c] - (sd - 0.1) / 0.1) < 1e-3, 'colour std');
    }
  }
  // only rgb is needed; colorStats: false gives all dims to the projection
  const rgbOnly = { rgb: v.rgb, width: S, height: S } as RenderedView;
  const t = new AppearanceTeacher(() => rgbOnly, { grid: [2, 3], dim: 8, seed: 1, colorStats: false });
  assert.is(t.features('x').length, 6 * 8);
  assertThrowsCode(() => new AppearanceTeacher(view, { grid: [4, 4], dim: 6, seed: 1 }), 'ERR_VALR_ARGUMENT', /too small/);
  assertThrowsCode(() => new AppearanceTeacher(view, { grid: [4, 4], dim: 16, seed: 1.5 }), 'ERR_VALR_ARGUMENT', /seed/);
});

// ------------------------------------------------------------------------------------
const own = suite('teachers: own vision tower');
const vision: VisionConfig = { imageSize: 8, patchSize: 4, channels: 3, hiddenSize: 12, numLayers: 1, numHeads: 2, intermediateSize: 24, layerNormEps: 1e-6 };
const IMAGES = new Map(['a', 'b', 'c'].map((id, i) => [id, rng(100 + i).floats(3 * 8 * 8)]));
let tower: VisionTower;
own.before(() => {
  tower = new VisionTower(vision, { seed: 3 });
});
own.after(() => tower.dispose());

own('features equal the tower run directly; no gradients, no leaked tensors', () => {
  const t = new OwnVisionTeacher(tower, (id) => IMAGES.get(id)!, { maxBatch: 2 });
  assert.equal([...t.grid], [2, 2]);
  assert.is(t.dim, 12);
  const before = runtime.hostMemoryStats().inUse;
  const got = t.batch(['a', 'b', 'c']);
  assert.is(runtime.hostMemoryStats().inUse, before, 'every intermediate tensor was freed');
  const x = new Float32Array(3 * 192);
  ['a', 'b', 'c'].forEach((id, i) => x.set(IMAGES.get(id)!, i * 192));
  const want = scope(() => tower.forward(x, 3).value.toArray() as Float32Array);
  assert.is(got.length, 3 * 4 * 12);
  assertClose(got, want, 1e-5, 1e-5, 'teacher vs tower');
  assertClose(t.features('b'), want.subarray(48, 96), 1e-5, 1e-5, 'features(b)');
  assertBitsEqual(t.features('b'), t.features('b'), 'deterministic');
  assert.ok(allFinite(got));
  for (const [name, p] of tower.namedParameters()) {
    assert.is(p.grad, null, `${name}.grad`);
    assert.ok(p.requiresGrad, `${name} left trainable`);
  }
  assert.ok(maxDiff(t.features('a'), t.features('b')) > 1e-3);
  assertThrowsCode(() => new OwnVisionTeacher(tower, () => new Float32Array(5)).features('a'), 'ERR_VALR_SHAPE', /'a'/);
});

// ------------------------------------------------------------------------------------
const pre = suite('teachers: precomputed');
let dir = '';
pre.before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'valr-teachers-'));
});
pre.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A safetensors file with the given header and data (header padded to 8 bytes). */
function rawFile(file: string, header: object, data: Uint8Array): void {
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const h = new TextEncoder().encode(text), out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  fs.writeFileSync(file, out);
}

pre('round trip through writePrecomputedTeacher, grid from metadata', async () => {
  const feats = new Map(['img/0', 'img/1', 'scene 3/view:2'].map((id, i) => [id, rng(i).floats(6 * 5)]));
  const file = path.join(dir, 'dino.safetensors');
  await writePrecomputedTeacher(file, feats, [2, 3], 5, { name: 'dinov3' });
  const t = new PrecomputedTeacher(file);
  assert.is(t.name, 'dinov3');
  assert.equal([...t.grid], [2, 3]);
  assert.is(t.dim, 5);
  assert.equal(t.ids().sort(), [...feats.keys()].sort());
  for (const [id, f] of feats) assertBitsEqual(t.features(id), f, id);
  const b = t.batch(['img/1', 'scene 3/view:2']);
  assertBitsEqual(b.subarray(0, 30), feats.get('img/1')!);
  assertBitsEqual(b.subarray(30), feats.get('scene 3/view:2')!);
  assert.is(new PrecomputedTeacher(file, { name: 'x' }).name, 'x');
  assertThrowsCode(() => t.features('img/2'), 'ERR_VALR_ARGUMENT', /no features for image id 'img\/2'/);
  let threw = false;
  await writePrecomputedTeacher(file, new Map([['a', new Float32Array(7)]]), [2, 3], 5).catch((e) => (threw = e.code === 'ERR_VALR_SHAPE'));
  assert.ok(threw, 'wrong length refused');
  for (const id of ['__proto__', '__metadata__', '']) {
    const e = await writePrecomputedTeacher(file, new Map([[id, new Float32Array(30)]]), [2, 3], 5).catch((err) => err);
    assert.is(e?.code, 'ERR_VALR_ARGUMENT', `id ${JSON.stringify(id)} refused`);
  }
  assertBitsEqual(new PrecomputedTeacher(file).features('img/0'), feats.get('img/0')!, 'failed write left the file alone');
});

pre('grid without metadata: [Gh, Gw, D] shapes, or a square P; clear errors otherwise', async () => {
  const f = (n: number) => rng(n).floats(n);
  const sq = path.join(dir, 'square.safetensors');
  await writeSafetensorsAtomic(sq, { a: { shape: [4, 3], data: f(12) }, b: { shape: [4, 3], data: f(12) } });
  const t = new PrecomputedTeacher(sq);
  assert.equal([...t.grid], [2, 2]);
  assert.is(t.name, 'square');
  const g3 = path.join(dir, 'grid3.safetensors');
  await writeSafetensorsAtomic(g3, { a: { shape: [2, 3, 4], data: f(24) }, b: { shape: [6, 4], data: f(24) } });
  assert.equal([...new PrecomputedTeacher(g3).grid], [2, 3]);
  assertBitsEqual(new PrecomputedTeacher(g3).features('a'), f(24));

  const bad = async (name: string, tensors: Parameters<typeof writeSafetensorsAtomic>[1], code: string, msg: RegExp, meta?: Record<string, string>) => {
    const p = path.join(dir, name);
    await writeSafetensorsAtomic(p, tensors, meta);
    assertThrowsCode(() => new PrecomputedTeacher(p), code, msg);
  };
  await bad('nonsquare.safetensors', { a: { shape: [6, 2], data: f(12) } }, 'ERR_VALR_SHAPE', /P = 6 patches is not a perfect square/);
  await bad('mixed.safetensors', { a: { shape: [4, 2], data: f(8) }, b: { shape: [4, 3], data: f(12) } }, 'ERR_VALR_SHAPE', /'b'.*same shape/);
  await bad('meta.safetensors', { a: { shape: [4, 2], data: f(8) } }, 'ERR_VALR_SHAPE', /grid 2x3 has 6 patches/, { grid: '2,3' });
  await bad('badmeta.safetensors', { a: { shape: [4, 2], data: f(8) } }, 'ERR_VALR_ARGUMENT', /not "Gh,Gw"/, { grid: 'two by two' });
  await bad('grid3.safetensors', { a: { shape: [2, 2, 2], data: f(8) } }, 'ERR_VALR_SHAPE', /grid 2x2 but the __metadata__ grid is 4x1/, { grid: '4,1' });
  await bad('int.safetensors', { a: { dtype: 'I32', shape: [4, 2], data: new Int32Array(8) } }, 'ERR_VALR_DTYPE', /I32/);
  await bad('rank1.safetensors', { a: { shape: [8], data: f(8) } }, 'ERR_VALR_SHAPE', /\[P, D\]/);
  assertThrowsCode(() => new PrecomputedTeacher(path.join(dir, 'missing.safetensors')), 'ERR_VALR_ARGUMENT', /cannot read/);
});

pre('F16 and BF16 features are widened exactly', () => {
  // 1, -2, 0.5, 3 in F16 (0x3c00, 0xc000, 0x3800, 0x4200) and BF16 (0x3f80, 0xc000, 0x3f00, 0x4040)
  const u16 = (xs: number[]) => new Uint8Array(Uint16Array.from(xs).buffer);
  const data = new Uint8Array(16);
  data.set(u16([0x3c00, 0xc000, 0x3800, 0x4200]), 0);
  data.set(u16([0x3f80, 0xc000, 0x3f00, 0x4040]), 8);
  const file = path.join(dir, 'half.safetensors');
  rawFile(file, { __metadata__: { grid: '1x2' }, h: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 8] }, b: { dtype: 'BF16', shape: [1, 2, 2], data_offsets: [8, 16] } }, data);
  const t = new PrecomputedTeacher(file);
  assert.equal([...t.grid], [1, 2]);
  assert.equal([...t.features('h')], [1, -2, 0.5, 3]);
  assert.equal([...t.features('b')], [1, -2, 0.5, 3]);
});

// ------------------------------------------------------------------------------------
const reg = suite('teachers: registry and cache');

reg('makeTeacher builds every kind; the cache computes each image once', async () => {
  const { view: v, calls } = counted();
  const g = makeTeacher({ kind: 'geometry', grid: [4, 4], maxObjects: M }, { view: v });
  assert.ok(g instanceof CachedTeacher);
  assert.is(g.dim, 15);
  const first = g.features('front');
  assertBitsEqual(first, geometry.features('front'));
  first.fill(0); // callers own what they get
  assertBitsEqual(g.features('front'), geometry.features('front'), 'cache not corrupted');
  const b = g.batch(['side', 'front', 'side', 'back']);
  assertBitsEqual(b, geometry.batch(['side', 'front', 'side', 'back']));
  g.batch(['back', 'side']);
  assert.equal(Object.fromEntries(calls), { front: 1, side: 1, back: 1 });
  const cache = (g as CachedTeacher).cache;
  assert.is(cache.size, 3);

  const a = makeTeacher({ kind: 'appearance', grid: [2, 2], dim: 16, seed: 3, cache: false }, { view });
  assert.ok(a instanceof AppearanceTeacher);
  const file = path.join(os.tmpdir(), `valr-teachers-${process.pid}.safetensors`);
  try {
    await writePrecomputedTeacher(file, new Map([['front', a.features('front')]]), [2, 2], 16);
    const p = makeTeacher({ kind: 'precomputed', path: file, name: 'dino' });
    assert.is(p.name, 'dino');
    assertBitsEqual(p.features('front'), a.features('front'));
  } finally {
    fs.rmSync(file, { force: true });
  }
  const tw = new VisionTower(vision, { seed: 4 });
  try {
    const o = makeTeacher({ kind: 'own' }, { tower: tw, images: (id) => IMAGES.get(id)! });
    assert.is(o.batch(['a', 'c', 'a']).length, 3 * 48);
  } finally {
    tw.dispose();
  }
  assertThrowsCode(() => makeTeacher({ kind: 'geometry', grid: [2, 2], maxObjects: 2 }), 'ERR_VALR_ARGUMENT', /deps.view/);
  // a bare { kind } (as a training config holds it): grid from deps, the rest from the defaults
  const bare = makeTeachers([{ kind: 'geometry' }, { kind: 'appearance' }], { view, grid: [2, 2] });
  assert.equal(bare.map((t) => [t.name, [...t.grid], t.dim]), [['geometry', [2, 2], 19], ['appearance', [2, 2], 64]]);
  assertBitsEqual(bare[1].features('front'), new AppearanceTeacher(view, { grid: [2, 2], dim: 64, seed: 0 }).features('front'));
  assertThrowsCode(() => makeTeacher({ kind: 'appearance' }, { view }), 'ERR_VALR_ARGUMENT', /deps.grid/);
  assertThrowsCode(() => makeTeacher({ kind: 'own' }, { view }), 'ERR_VALR_ARGUMENT', /deps.tower/);
  assertThrowsCode(() => makeTeacher({ kind: 'dino' } as never), 'ERR_VALR_ARGUMENT', /unknown teacher kind/);
  assertThrowsCode(
    () => makeTeachers([{ kind: 'geometry', grid: [2, 2], maxObjects: 2 }, { kind: 'geometry', grid: [4, 4], maxObjects: 2 }], { view }),
    'ERR_VALR_ARGUMENT',
    /named 'geometry'/,
  );
  const two: Teacher[] = makeTeachers(
    [
      { kind: 'geometry', grid: [4, 4], maxObjects: 2 },
      { kind: 'appearance', grid: [4, 4], dim: 16, seed: 1 },
    ],
    { view },
  );
  assert.equal(two.map((t) => t.name), ['geometry', 'appearance']);
});

reg('LRU eviction by bytes and entries', () => {
  const c = new LruCache<string, Float32Array>({ maxBytes: 40 });
  c.set('a', new Float32Array(4)).set('b', new Float32Array(4));
  c.get('a'); // b is now the least recently used
  c.set('c', new Float32Array(4)); // 48 bytes > 40: b goes
  assert.equal([...c.keys()], ['a', 'c']);
  assert.is(c.bytes, 32);
  c.set('huge', new Float32Array(11)); // over the whole budget: not kept
  assert.ok(!c.has('huge'));
  const e = new LruCache<string, Float32Array>({ maxEntries: 2 });
  e.set('x', new Float32Array(1)).set('y', new Float32Array(1)).set('z', new Float32Array(1));
  assert.equal([...e.keys()], ['y', 'z']);
  const { view: v, calls } = counted();
  const t = makeTeacher({ kind: 'geometry', grid: [2, 2], maxObjects: 2, cache: { maxEntries: 1 } }, { view: v });
  t.batch(['front', 'side', 'front']); // both computed in one inner call although only one stays cached
  t.features('side');
  t.features('front');
  assert.equal(Object.fromEntries(calls), { front: 2, side: 1 });
});

geo.run();
app.run();
own.run();
pre.run();
reg.run();
