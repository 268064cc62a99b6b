// Synthetic scenes and the ray caster: seeded determinism, placement rules, camera geometry,
// render sanity (object pixels, depth, xyz, reprojection) at 32 and 64 pixels, bad inputs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { hashSeed, Rng } from '../lib/data/prng';
import { generateScene, projectPoint, footprintRadius, objectName, PLACEMENT_RADIUS, type Scene } from '../lib/data/scene';
import { renderScene, renderView, renderObjectIds, objectPixelCounts, BACKGROUND_DEPTH, BACKGROUND_ID, FLOOR_ID } from '../lib/data/render';
import { assertBitsEqual, assertThrowsCode } from './helpers/check';

const test = suite('data-scene');

test('Rng: deterministic, in range, seeds and labels matter', () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const xs = Array.from({ length: 100 }, () => a.float());
  assert.equal(xs, Array.from({ length: 100 }, () => b.float()));
  assert.not.equal(xs, Array.from({ length: 100 }, () => c.float()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const r = new Rng(7);
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[r.int(0, 2)]++;
  assert.ok(counts.every((n) => n > 850 && n < 1150), `int(0, 2) roughly uniform: ${counts}`);
  assert.is.not(hashSeed(1, 'train', 0), hashSeed(1, 'val', 0));
  assert.is.not(hashSeed('ab', 'c'), hashSeed('a', 'bc'));
  assert.is(hashSeed(1, 'train', 0), hashSeed(1, 'train', 0));
  assertThrowsCode(() => new Rng(1.5), 'ERR_VALR_ARGUMENT', /seed/);
});

test('generateScene: same seed, same scene; placement rules hold', () => {
  assert.equal(generateScene({ seed: 5, numViews: 4 }), generateScene({ seed: 5, numViews: 4 }));
  assert.not.equal(generateScene({ seed: 5, numViews: 4 }).objects, generateScene({ seed: 6, numViews: 4 }).objects);
  for (let seed = 0; seed < 60; seed++) {
    const numViews = 2 + (seed % 5);
    const s = generateScene({ seed, numViews });
    assert.ok(s.objects.length >= 3 && s.objects.length <= 6, `seed ${seed}: ${s.objects.length} objects`);
    assert.is(s.cameras.length, numViews);
    const names = new Set(s.objects.map(objectName));
    assert.is(names.size, s.objects.length, `seed ${seed}: colour+shape names are unique`);
    for (const o of s.objects) {
      assert.is(o.position[1], 0);
      assert.equal(o.center, [o.position[0], o.scale, o.position[2]]);
      assert.ok(Math.hypot(o.position[0], o.position[2]) + footprintRadius(o) <= PLACEMENT_RADIUS + 1e-9);
      for (const p of s.objects) {
        if (p.index <= o.index) continue;
        const d = Math.hypot(o.position[0] - p.position[0], o.position[2] - p.position[2]);
        assert.ok(d >= footprintRadius(o) + footprintRadius(p), `seed ${seed}: objects ${o.index} and ${p.index} overlap`);
      }
    }
    const az = s.cameras.map((c) => c.azimuthDeg);
    assert.is(new Set(az.map((a) => Math.round(a))).size, az.length, 'different azimuths');
  }
});

test('cameras: orthonormal rotation, target projects to the image centre', () => {
  const s = generateScene({ seed: 11, numViews: 5, width: 32, height: 32 });
  for (const c of s.cameras) {
    const m = c.worldToCamera;
    const rows = [0, 1, 2].map((r) => [m[4 * r], m[4 * r + 1], m[4 * r + 2]]);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        const dot = rows[i][0] * rows[j][0] + rows[i][1] * rows[j][1] + rows[i][2] * rows[j][2];
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12);
      }
    }
    const p = projectPoint(c, c.target);
    assert.ok(Math.abs(p.u - 16) < 1e-9 && Math.abs(p.v - 16) < 1e-9, `target at (${p.u}, ${p.v})`);
    assert.ok(Math.abs(p.depth - c.distance) < 1e-9);
    const cam = projectPoint(c, [c.position[0], c.position[1] + 1, c.position[2]]);
    assert.ok(cam.v < 16 || cam.depth < 0, 'world up is image up');
    assert.is(c.intrinsics.cx, 16);
  }
});

function checkRender(scene: Scene, size: number): number {
  const views = renderScene(scene, { width: size, height: size });
  let withObjects = 0;
  views.forEach((v, vi) => {
    const HW = size * size;
    assert.is(v.width, size);
    assert.is(v.height, size);
    assert.is(v.rgb.length, 3 * HW);
    assert.is(v.xyz.length, 3 * HW);
    assert.is(v.depth.length, HW);
    assert.is(v.objectId.length, HW);
    const cam = scene.cameras[vi];
    const K = { f: size / 2 / Math.tan((cam.fovYDeg * Math.PI) / 360), c: size / 2 };
    for (let p = 0; p < HW; p++) {
      for (let c = 0; c < 3; c++) assert.ok(v.rgb[c * HW + p] >= 0 && v.rgb[c * HW + p] <= 1);
      const id = v.objectId[p];
      assert.ok(id === BACKGROUND_ID || id === FLOOR_ID || (id >= 0 && id < scene.objects.length));
      if (id === BACKGROUND_ID) {
        assert.is(v.depth[p], BACKGROUND_DEPTH);
        assert.ok(v.xyz[p] === 0 && v.xyz[HW + p] === 0 && v.xyz[2 * HW + p] === 0);
        continue;
      }
      const x = v.xyz[p], y = v.xyz[HW + p], z = v.xyz[2 * HW + p];
      assert.ok(Number.isFinite(v.depth[p]) && v.depth[p] > 0 && v.depth[p] < BACKGROUND_DEPTH);
      // depth is the distance from the camera centre to the hit point
      const d = Math.hypot(x - cam.position[0], y - cam.position[1], z - cam.position[2]);
      assert.ok(Math.abs(d - v.depth[p]) < 1e-4 * Math.max(1, d), `depth ${v.depth[p]} vs |xyz - C| ${d}`);
      // the hit point projects back into its pixel (at this render size: same field of view)
      const q = projectPoint(cam, [x, y, z]);
      const pu = ((q.u - cam.intrinsics.cx) / cam.intrinsics.fx) * K.f + K.c;
      const pv = ((q.v - cam.intrinsics.cy) / cam.intrinsics.fy) * K.f + K.c;
      assert.ok(Math.abs(pu - ((p % size) + 0.5)) < 1e-3 && Math.abs(pv - (Math.floor(p / size) + 0.5)) < 1e-3, 'reprojection');
      if (id === FLOOR_ID) {
        assert.ok(Math.abs(y) < 1e-5, 'floor hits lie on y = 0');
      } else {
        const o = scene.objects[id];
        const r = footprintRadius(o);
        assert.ok(y >= -1e-4 && y <= 2 * o.scale + 1e-4, 'object hit within its height');
        assert.ok(Math.hypot(x - o.position[0], z - o.position[2]) <= r + 1e-4, 'object hit within its footprint');
      }
    }
    if (objectPixelCounts(v, scene.objects.length).some((n) => n > 0)) withObjects++;
  });
  return withObjects / views.length;
}

test('renders are sane at 32x32 and 64x64', () => {
  let frac = 0, n = 0;
  for (let seed = 0; seed < 8; seed++) {
    const s = generateScene({ seed, numViews: 4 });
    frac += checkRender(s, 32);
    n++;
  }
  assert.ok(frac / n >= 0.8, `views with object pixels: ${(frac / n).toFixed(2)}`);
  const s = generateScene({ seed: 3, numViews: 3, width: 64, height: 64 });
  assert.ok(checkRender(s, 64) >= 0.5);
  // rendering a 32x32 scene at 64 keeps the field of view: object pixels scale by about 4
  const s32 = generateScene({ seed: 3, numViews: 3 });
  const a = objectPixelCounts(renderView(s32, 0), s32.objects.length).reduce((x, y) => x + y, 0);
  const b = objectPixelCounts(renderView(s32, 0, { width: 64, height: 64 }), s32.objects.length).reduce((x, y) => x + y, 0);
  assert.ok(b > 3 * a && b < 5 * a, `${a} px at 32, ${b} at 64`);
});

test('renders are bit-identical for the same seed', () => {
  const a = renderScene(generateScene({ seed: 99, numViews: 3 }));
  const b = renderScene(generateScene({ seed: 99, numViews: 3 }));
  a.forEach((v, i) => {
    assertBitsEqual(v.rgb, b[i].rgb, 'rgb');
    assertBitsEqual(v.depth, b[i].depth, 'depth');
    assertBitsEqual(v.xyz, b[i].xyz, 'xyz');
    assert.equal(Array.from(v.objectId), Array.from(b[i].objectId));
  });
  const c = renderScene(generateScene({ seed: 100, numViews: 3 }));
  assert.not.equal(Array.from(a[0].rgb), Array.from(c[0].rgb));
});

test('renderObjectIds (screen-box culling, no shading) equals renderView objectId', () => {
  for (let seed = 0; seed < 20; seed++) {
    const s = generateScene({ seed, numViews: 3 });
    for (let v = 0; v < 3; v++) {
      for (const [w, h] of [[32, 32], [64, 64], [40, 24]]) {
        const full = renderView(s, v, { width: w, height: h });
        assert.equal(Array.from(renderObjectIds(s, v, { width: w, height: h })), Array.from(full.objectId), `seed ${seed} view ${v} ${w}x${h}`);
      }
    }
  }
});

test('shadows darken the floor somewhere and can be switched off', () => {
  const s = generateScene({ seed: 4, numViews: 2 });
  const lit = renderView(s, 0, { shadows: false }), shaded = renderView(s, 0);
  let darker = 0;
  for (let p = 0; p < 32 * 32; p++) {
    assert.ok(shaded.rgb[p] <= lit.rgb[p] + 1e-7);
    if (shaded.rgb[p] < lit.rgb[p] - 1e-3) darker++;
  }
  assert.ok(darker > 0);
});

test('bad inputs are ValrErrors', () => {
  assertThrowsCode(() => generateScene({ seed: 1.5 }), 'ERR_VALR_ARGUMENT', /seed/);
  assertThrowsCode(() => generateScene({ seed: 1, numViews: 0 }), 'ERR_VALR_ARGUMENT', /numViews/);
  assertThrowsCode(() => generateScene({ seed: 1, numObjects: [5, 3] }), 'ERR_VALR_ARGUMENT', /numObjects/);
  assertThrowsCode(() => generateScene({ seed: 1, width: 0 }), 'ERR_VALR_ARGUMENT', /width/);
  assertThrowsCode(() => generateScene(null as never), 'ERR_VALR_ARGUMENT');
  const s = generateScene({ seed: 1, numViews: 2 });
  assertThrowsCode(() => renderView(s, 2), 'ERR_VALR_RANGE', /camera index 2/);
  assertThrowsCode(() => renderView(s, 0, { width: -3 }), 'ERR_VALR_ARGUMENT', /width/);
  assertThrowsCode(() => renderView({} as never, 0), 'ERR_VALR_ARGUMENT');
});

test.run();
