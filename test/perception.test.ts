// The perception stage (lib/train/perception.ts): batches of rendered views with their
// patch labels (every view once per pass, labels = patchLabels, images = the view's rgb),
// a short training run that lowers the loss and touches only the vision tower and the
// projector, and bad step counts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { patchLabels } from '../lib/data/patch-labels';
import { renderView, type RenderedView } from '../lib/data/render';
import { generateScene, type SceneObject } from '../lib/data/scene';
import { MultimodalModel } from '../lib/nn/mllm';
import { presets } from '../lib/nn/presets';
import { trainPerception, viewPerceptionBatches, type PerceptionBatch } from '../lib/train/perception';
import { assertBitsEqual, assertThrowsCode, rng } from './helpers/check';

const test = suite('perception');

// A handful of rendered scenes: 5 scenes x 2 views at 32x32.
const VIEWS = new Map<string, RenderedView>();
const OBJECTS = new Map<string, SceneObject[]>();
{
  const r = rng(3);
  for (let s = 0; s < 5; s++) {
    const scene = generateScene({ seed: r.int(1, 1_000_000), numViews: 2, width: 32, height: 32 });
    for (let v = 0; v < 2; v++) {
      const id = `s${s}-v${v}`;
      VIEWS.set(id, renderView(scene, v));
      OBJECTS.set(id, scene.objects);
    }
  }
}
const IDS = [...VIEWS.keys()];
const GRID = 4; // the tiny preset: 32x32 images, 8x8 patches

function spied(ids: readonly string[], batchSize: number, seed?: number) {
  const viewCalls: string[] = [], objectCalls: string[] = [];
  const next = viewPerceptionBatches(ids, {
    view: (id) => (viewCalls.push(id), VIEWS.get(id)!),
    objects: (id) => (objectCalls.push(id), OBJECTS.get(id)!),
    grid: GRID, batchSize, seed,
  });
  return { next, viewCalls, objectCalls };
}

async function assertRejectsCode(p: () => Promise<unknown>, code: string) {
  try {
    await p();
  } catch (e) {
    assert.is((e as { code?: string }).code, code, (e as Error).message);
    return;
  }
  assert.unreachable(`expected a rejection with ${code}`);
}

test('viewPerceptionBatches: every view once per pass, in a seeded order', () => {
  for (const [n, bs] of [[10, 5], [10, 3], [7, 4], [10, 1], [3, 8]] as const) {
    const ids = IDS.slice(0, n);
    const s = spied(ids, bs, 11);
    const calls = Math.ceil(n / bs);
    for (let c = 0; c < calls; c++) s.next(c);
    assert.is(s.viewCalls.length, calls * bs, `n ${n} batch ${bs}`);
    const counts = new Map<string, number>();
    for (const id of s.viewCalls) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.equal([...counts.keys()].sort(), ids.slice().sort(), `n ${n} batch ${bs}: every view within ceil(n / batch) calls`);
    // more passes: each consecutive block of n draws is a permutation of the views
    for (let c = calls; c < calls + 3 * n; c++) s.next(c);
    const full = Math.floor(s.viewCalls.length / n);
    assert.ok(full >= 3);
    for (let k = 0; k < full; k++) {
      assert.equal(s.viewCalls.slice(k * n, (k + 1) * n).sort(), ids.slice().sort(), `n ${n} batch ${bs}: pass ${k}`);
    }
    // labels are computed once per view
    assert.equal(s.objectCalls.slice().sort(), ids.slice().sort(), `n ${n} batch ${bs}: objects looked up once per view`);
  }
  // the same seed gives the same order, another seed another
  const a = spied(IDS, 10, 1), b = spied(IDS, 10, 1), c = spied(IDS, 10, 2);
  a.next(0), b.next(0), c.next(0);
  assert.equal(a.viewCalls, b.viewCalls);
  assert.not.equal(a.viewCalls, c.viewCalls);
});

test('viewPerceptionBatches: images are the views\' rgb, labels their patchLabels', () => {
  const s = spied(IDS, 4, 5);
  const P = GRID * GRID, size = 3 * 32 * 32;
  for (let step = 0; step < 6; step++) {
    const before = s.viewCalls.length;
    const b: PerceptionBatch = s.next(step);
    const ids = s.viewCalls.slice(before);
    assert.is(b.n, 4);
    assert.is(ids.length, 4);
    assert.is(b.images.length, 4 * size);
    assert.is(b.kind.length, 4 * P);
    assert.is(b.size.length, 4 * P);
    ids.forEach((id, i) => {
      const v = VIEWS.get(id)!;
      assertBitsEqual(b.images.subarray(i * size, (i + 1) * size), v.rgb, `step ${step} image ${i}`);
      const l = patchLabels(v, OBJECTS.get(id)!, GRID);
      assert.equal(Array.from(b.kind.subarray(i * P, (i + 1) * P)), Array.from(l.kind), `step ${step} kind ${i}`);
      assert.equal(Array.from(b.size.subarray(i * P, (i + 1) * P)), Array.from(l.size), `step ${step} size ${i}`);
    });
  }
});

test('viewPerceptionBatches: bad inputs', () => {
  const o = { view: (id: string) => VIEWS.get(id)!, objects: (id: string) => OBJECTS.get(id)!, grid: GRID };
  assertThrowsCode(() => viewPerceptionBatches([], { ...o, batchSize: 2 }), 'ERR_VALR_ARGUMENT');
  for (const bs of [0, -1, 1.5, NaN]) assertThrowsCode(() => viewPerceptionBatches(IDS, { ...o, batchSize: bs }), 'ERR_VALR_ARGUMENT');
  // a grid that does not divide the view fails when the labels are made
  const bad = viewPerceptionBatches(IDS, { ...o, grid: 3, batchSize: 2 });
  assertThrowsCode(() => bad(0), 'ERR_VALR_ARGUMENT');
});

// ------------------------------------------------------------------------------------
// Training

function tinyModel(seed: number) {
  const t = presets.tiny;
  return new MultimodalModel({ decoder: { ...t.decoder, vocabSize: 24 }, vision: { ...t.vision }, imageTokenId: 4 }, { seed });
}
const snapshot = (m: MultimodalModel) => new Map(m.namedParameters().map(([n, p]) => [n, (p.value.toArray() as Float32Array).slice()]));
const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && new Uint32Array(a.buffer).every((x, i) => x === new Uint32Array(b.buffer)[i]);

test('trainPerception: a short run lowers the loss and changes only the vision tower and projector', async () => {
  const model = tinyModel(9);
  try {
    const before = snapshot(model);
    const steps = 120;
    const seen: number[] = [];
    const t0 = performance.now();
    const r = await trainPerception(model, {
      steps, lr: 3e-3, seed: 1,
      batch: viewPerceptionBatches(IDS, { view: (id) => VIEWS.get(id)!, objects: (id) => OBJECTS.get(id)!, grid: GRID, batchSize: 5, seed: 2 }),
      onStep: (s) => {
        seen.push(s.step);
        assert.is(s.steps, steps);
      },
    });
    const ms = performance.now() - t0;
    assert.is(r.steps, steps);
    assert.is(r.losses.length, steps);
    assert.equal(seen, Array.from({ length: steps }, (_, i) => i + 1));
    assert.ok(r.losses.every(Number.isFinite));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(r.losses.slice(0, 10)), last = mean(r.losses.slice(-10));
    console.log(`    perception: ${steps} steps in ${(ms / 1000).toFixed(1)} s, loss ${first.toFixed(3)} -> ${last.toFixed(3)}, kind accuracy ${(r.kindAccuracy * 100).toFixed(1)}%`);
    assert.ok(last < 0.8 * first, `loss ${first} -> ${last}`);
    assert.ok(r.kindAccuracy >= 0 && r.kindAccuracy <= 1);
    // the untrained loss: ln(34) for the kind head + about ln(3) for the size head
    assert.ok(first > 3 && first < 6.5, `initial loss ${first}`);

    const after = snapshot(model);
    let changed = 0;
    for (const [name, v] of before) {
      const same = sameBits(v, after.get(name)!);
      if (name.startsWith('language_model.')) assert.ok(same, `${name} changed`);
      else {
        assert.ok(name.startsWith('vision_tower.') || name.startsWith('projector.'), name);
        assert.not.ok(same, `${name} did not change`);
        changed++;
      }
    }
    assert.ok(changed > 10, `${changed} vision / projector tensors changed`);
    assert.is(model.namedParameters().length, before.size, 'the heads are not left in the model');
    // the tower and projector stay trainable
    for (const p of [...model.vision_tower.parameters(), ...model.projector.parameters()]) assert.ok(p.requiresGrad);
  } finally {
    model.dispose();
  }
});

test('trainPerception: steps 0 changes nothing; bad step counts are refused; shouldStop stops', async () => {
  const model = tinyModel(4);
  try {
    let batches = 0;
    const batch = viewPerceptionBatches(IDS, { view: (id) => VIEWS.get(id)!, objects: (id) => OBJECTS.get(id)!, grid: GRID, batchSize: 2 });
    const counting = (s: number) => (batches++, batch(s));
    const before = snapshot(model);
    const r = await trainPerception(model, { steps: 0, lr: 1e-2, batch: counting });
    assert.is(r.steps, 0);
    assert.equal(r.losses, []);
    assert.ok(Number.isNaN(r.kindAccuracy));
    assert.is(batches, 0);
    for (const [name, v] of snapshot(model)) assert.ok(sameBits(v, before.get(name)!), `${name} changed with steps 0`);

    for (const steps of [-1, 1.5, NaN, Infinity]) await assertRejectsCode(() => trainPerception(model, { steps, lr: 1e-2, batch: counting }), 'ERR_VALR_ARGUMENT');
    assert.is(batches, 0);
    for (const [name, v] of snapshot(model)) assert.ok(sameBits(v, before.get(name)!), `${name} changed by a refused call`);

    let calls = 0;
    const s = await trainPerception(model, { steps: 50, lr: 1e-3, batch: counting, shouldStop: () => ++calls >= 3 });
    assert.is(s.steps, 3);
    assert.is(s.losses.length, 3);
    assert.is(batches, 3);
  } finally {
    model.dispose();
  }
});

test.run();
