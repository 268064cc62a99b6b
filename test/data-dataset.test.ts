// The synthetic dataset: determinism (identical files from the same seed), held-out scenes,
// balanced families and view counts, every answer recomputed from scenes.json and the
// stored objectId maps independently of the question generator, the loader, bad inputs,
// and the time the default dataset takes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateDataset, loadDataset, makeDataset, writeDataset, SPLITS, type LoadedDataset, type Sample, type SceneRecord } from '../lib/data/dataset';
import { FAMILIES } from '../lib/data/questions';
import { assertBitsEqual, assertThrowsCode } from './helpers/check';

const test = suite('data-dataset');
const tmp = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `valr-data-${tag}-`));
const SMALL = { seed: 7, train: 40, val: 10, test: 15, numViews: [2, 3, 4, 5, 6] };
const FILES = ['train.jsonl', 'val.jsonl', 'test.jsonl', 'views.safetensors', 'scenes.json', 'meta.json'];

let defaultDir = '';
let defaultMs = 0;
let loaded: LoadedDataset;

test.before(async () => {
  defaultDir = tmp('default');
  const t0 = performance.now();
  await makeDataset({ dir: defaultDir });
  defaultMs = performance.now() - t0;
  loaded = loadDataset(defaultDir);
});

test.after(() => {
  fs.rmSync(defaultDir, { recursive: true, force: true });
});

test('the default dataset (600/100/200 at 32x32, 2-5 views) is made in a few seconds', () => {
  console.log(`    default dataset: ${defaultMs.toFixed(0)} ms to generate and write (${(fs.statSync(path.join(defaultDir, 'views.safetensors')).size / 1e6).toFixed(1)} MB of views)`);
  assert.ok(defaultMs < 30_000, `took ${defaultMs} ms`);
  const m = loaded.meta;
  assert.equal(m.sizes, { train: 600, val: 100, test: 200 });
  assert.is(m.imageSize, 32);
  for (const split of SPLITS) {
    assert.is(loaded.splits[split].length, m.sizes[split]);
    assert.is(m.splits[split].samples, m.sizes[split]);
  }
});

test('same seed -> identical files; another seed -> different files', async () => {
  const a = tmp('a'), b = tmp('b'), c = tmp('c');
  try {
    await makeDataset({ ...SMALL, dir: a });
    await writeDataset(b, generateDataset(SMALL));
    await makeDataset({ ...SMALL, seed: 8, dir: c });
    for (const f of FILES) {
      const x = fs.readFileSync(path.join(a, f)), y = fs.readFileSync(path.join(b, f));
      assert.ok(x.equals(y), `${f} differs between two runs with the same seed`);
    }
    assert.not.ok(fs.readFileSync(path.join(a, 'train.jsonl')).equals(fs.readFileSync(path.join(c, 'train.jsonl'))));
    assert.not.ok(fs.readFileSync(path.join(a, 'views.safetensors')).equals(fs.readFileSync(path.join(c, 'views.safetensors'))));
    // no temp files left behind
    assert.equal(fs.readdirSync(a).sort(), FILES.slice().sort());
  } finally {
    for (const d of [a, b, c]) fs.rmSync(d, { recursive: true, force: true });
  }
});

test('held-out scenes: no scene or image is shared between splits', () => {
  const sceneSplit = new Map<string, string>();
  for (const s of loaded.scenes) sceneSplit.set(s.id, s.split);
  const seeds = new Set(loaded.scenes.map((s) => s.seed));
  assert.is(seeds.size, loaded.scenes.length, 'every scene has its own seed');
  const imagesBySplit = new Map<string, Set<string>>();
  for (const split of SPLITS) {
    const imgs = new Set<string>();
    for (const s of loaded.splits[split]) {
      assert.is(sceneSplit.get(s.sceneId), split, `${s.id}: its scene is in ${split}`);
      const scene = loaded.scene(s.sceneId);
      assert.equal(s.images, scene.images, `${s.id}: images are its scene's views`);
      s.images.forEach((im) => imgs.add(im));
    }
    imagesBySplit.set(split, imgs);
  }
  for (const x of SPLITS) {
    for (const y of SPLITS) {
      if (x >= y) continue;
      const sx = new Set(loaded.splits[x].map((s) => s.sceneId));
      assert.ok(loaded.splits[y].every((s) => !sx.has(s.sceneId)), `${x} and ${y} share a scene`);
      assert.ok([...imagesBySplit.get(y)!].every((im) => !imagesBySplit.get(x)!.has(im)), `${x} and ${y} share an image`);
    }
  }
  // object layouts differ too (not just ids)
  const layouts = new Set(loaded.scenes.map((s) => JSON.stringify(s.objects.map((o) => o.position))));
  assert.is(layouts.size, loaded.scenes.length);
});

test('families and view counts are balanced within each split', () => {
  for (const split of SPLITS) {
    const samples = loaded.splits[split];
    const per = samples.length / FAMILIES.length;
    for (const f of FAMILIES) assert.is(samples.filter((s) => s.family === f).length, per, `${split} ${f}`);
    for (const v of [2, 3, 4, 5]) assert.is(samples.filter((s) => s.numViews === v).length, samples.length / 4, `${split} numViews ${v}`);
    const ids = new Set(samples.map((s) => s.id));
    assert.is(ids.size, samples.length);
  }
  const train = loaded.splits.train;
  const ans = (f: string, a: string) => train.filter((s) => s.family === f && s.answer === a).length;
  assert.is(ans('size', 'yes'), ans('size', 'no'));
  assert.ok(Math.abs(ans('direction', 'left') - ans('direction', 'right')) <= 12);
});

// ---- independent recomputation of the facts --------------------------------------------

interface Facts {
  scene: SceneRecord;
  /** [view][object] pixels, from the stored objectId maps */
  pixels: number[][];
  visible: boolean[][];
}

function facts(ds: LoadedDataset, scene: SceneRecord, minPixels: number): Facts {
  const pixels = scene.images.map((id) => {
    const v = ds.view(id);
    const counts = new Array(scene.objects.length).fill(0);
    for (const o of v.objectId) if (o >= 0) counts[o]++;
    return counts;
  });
  return { scene, pixels, visible: pixels.map((row) => row.map((c) => c >= minPixels)) };
}

function byName(scene: SceneRecord, name: string) {
  const [colour, shape] = name.split(' ');
  const found = scene.objects.filter((o) => o.colour === colour && o.shape === shape);
  assert.is(found.length, 1, `"${name}" names exactly one object`);
  return found[0];
}

function centre(o: SceneRecord['objects'][number]): number[] {
  return [o.position[0], o.position[1] + o.scale, o.position[2]];
}

const dist = (a: number[], b: number[]) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

function checkSample(s: Sample, f: Facts): void {
  const { scene, visible } = f;
  const seenIn = (o: { index: number }) => visible.map((row, v) => (row[o.index] ? v : -1)).filter((v) => v >= 0);
  const notInOneView = (objs: { index: number }[]) => visible.every((row) => !objs.every((o) => row[o.index]));
  // steps: one per view, in order, each naming its view
  assert.is(s.steps.length, s.numViews, `${s.id}: one step per view`);
  assert.is(s.images.length, s.numViews);
  s.steps.forEach((st, i) => {
    assert.is(st.view, i);
    assert.ok(st.view >= 0 && st.view < s.images.length);
    assert.ok(st.text.startsWith(`In view ${i} `), `${s.id}: step ${i} names its view: ${st.text}`);
  });
  let m: RegExpMatchArray | null;
  switch (s.family) {
    case 'count': {
      m = s.question.match(/^How many (\w+) objects are there across the views\?$/) ?? s.question.match(/^How many (\w+)s are there across the views\?$/);
      assert.ok(m, s.question);
      const key = m![1];
      const matching = scene.objects.filter((o) => o.colour === key || o.shape === key);
      const counted = matching.filter((o) => seenIn(o).length > 0);
      assert.is(s.answer, String(counted.length), `${s.id}: ${s.question}`);
      const maxInOne = Math.max(...visible.map((row) => counted.filter((o) => row[o.index]).length));
      assert.ok(counted.length > maxInOne, `${s.id}: one view would be enough`);
      assert.match(s.steps[s.steps.length - 1].text, new RegExp(`, ${counted.length} so far\\. So there are ${counted.length} `));
      break;
    }
    case 'distance': {
      m = s.question.match(/^Which is closer to the (\w+ \w+): the (\w+ \w+) or the (\w+ \w+)\?$/);
      assert.ok(m, s.question);
      const [a, b, c] = [m![1], m![2], m![3]].map((n) => byName(scene, n));
      const db = dist(centre(a), centre(b)), dc = dist(centre(a), centre(c));
      assert.ok(Math.abs(db - dc) >= 0.3, `${s.id}: unambiguous margin`);
      assert.is.not(b.colour, c.colour);
      assert.is(s.answer, (db < dc ? b : c).colour, `${s.id}: ${s.question} (${db.toFixed(2)} vs ${dc.toFixed(2)})`);
      assert.ok(notInOneView([a, b, c]) && [a, b, c].every((o) => seenIn(o).length > 0));
      break;
    }
    case 'direction': {
      m = s.question.match(/^Standing at the (\w+ \w+) facing the (\w+ \w+), is the (\w+ \w+) to the left or right\?$/);
      assert.ok(m, s.question);
      const [a, b, c] = [m![1], m![2], m![3]].map((n) => byName(scene, n));
      // in the floor plane, y up: facing f, the right-hand side is f x up = (-f.z, 0, f.x)
      const f = [b.position[0] - a.position[0], b.position[2] - a.position[2]];
      const t = [c.position[0] - a.position[0], c.position[2] - a.position[2]];
      const crossY = -f[1] * t[0] + f[0] * t[1];
      assert.ok(Math.abs(crossY) / (Math.hypot(f[0], f[1]) * Math.hypot(t[0], t[1])) >= 0.3 - 1e-9, 'not straight ahead');
      assert.is(s.answer, crossY > 0 ? 'right' : 'left', `${s.id}: ${s.question}`);
      assert.ok(notInOneView([a, b, c]));
      break;
    }
    case 'order': {
      m = s.question.match(/^Which appears first across the views: the (\w+ \w+)(?:, the (\w+ \w+))? or the (\w+ \w+)\?$/);
      assert.ok(m, s.question);
      const objs = [m![1], m![2], m![3]].filter(Boolean).map((n) => byName(scene, n));
      const first = objs.map((o) => Math.min(...seenIn(o)));
      const earliest = Math.min(...first);
      assert.is(first.filter((x) => x === earliest).length, 1, `${s.id}: unique first`);
      assert.is(s.answer, objs[first.indexOf(earliest)].colour, `${s.id}: ${s.question}`);
      assert.is(new Set(objs.map((o) => o.colour)).size, objs.length);
      break;
    }
    case 'size': {
      m = s.question.match(/^Is the (\w+ \w+) bigger than the (\w+ \w+)\?$/);
      assert.ok(m, s.question);
      const [a, b] = [m![1], m![2]].map((n) => byName(scene, n));
      const rank = { small: 0, medium: 1, large: 2 } as const;
      assert.is.not(a.size, b.size);
      assert.is(s.answer, rank[a.size] > rank[b.size] ? 'yes' : 'no', `${s.id}: ${s.question}`);
      assert.ok(a.scale !== b.scale && (a.scale > b.scale) === (s.answer === 'yes'));
      assert.ok(notInOneView([a, b]));
      break;
    }
    default:
      assert.unreachable(`unknown family ${s.family}`);
  }
}

test('every answer agrees with the scene facts (recomputed from scenes.json and the objectId maps)', () => {
  const minPixels = loaded.meta.visibleMinPixels;
  const cache = new Map<string, Facts>();
  let checked = 0;
  for (const split of SPLITS) {
    for (const s of loaded.splits[split]) {
      let f = cache.get(s.sceneId);
      if (!f) {
        f = facts(loaded, loaded.scene(s.sceneId), minPixels);
        assert.equal(f.pixels, f.scene.pixelCounts, `${s.sceneId}: stored pixel counts match the objectId maps`);
        cache.set(s.sceneId, f);
      }
      checkSample(s, f);
      checked++;
    }
  }
  assert.is(checked, 900);
});

test('views: shapes, sane values, most views show an object', () => {
  let withObject = 0;
  for (const id of loaded.imageIds) {
    const v = loaded.view(id);
    assert.is(v.width, 32);
    assert.is(v.height, 32);
    assert.is(v.rgb.length, 3 * 32 * 32);
    let any = false;
    for (let p = 0; p < 1024; p++) {
      if (v.objectId[p] >= 0) any = true;
      if (v.objectId[p] !== -2) assert.ok(Number.isFinite(v.depth[p]) && v.depth[p] > 0 && v.depth[p] < loaded.meta.backgroundDepth);
      else assert.is(v.depth[p], loaded.meta.backgroundDepth);
    }
    if (any) withObject++;
  }
  assert.ok(withObject / loaded.imageIds.length > 0.9, `views with an object: ${withObject}/${loaded.imageIds.length}`);
});

test('64x64 datasets work and load back bit-exactly', async () => {
  const dir = tmp('64');
  try {
    const ds = generateDataset({ seed: 3, train: 10, val: 5, test: 5, imageSize: 64 });
    await writeDataset(dir, ds);
    const l = loadDataset(dir);
    assert.equal(l.splits, ds.splits);
    for (const [id, v] of ds.views) {
      const w = l.view(id);
      assert.is(w.width, 64);
      assertBitsEqual(w.rgb, v.rgb, `${id}.rgb`);
      assertBitsEqual(w.depth, v.depth, `${id}.depth`);
      assertBitsEqual(w.xyz, v.xyz, `${id}.xyz`);
      assert.equal(Array.from(w.objectId), Array.from(v.objectId));
    }
    assert.is(l.meta.visibleMinPixels, 62);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad options and corrupt files are ValrErrors', async () => {
  assertThrowsCode(() => generateDataset({ numViews: [1] }), 'ERR_VALR_ARGUMENT', /numViews\[0\]/);
  assertThrowsCode(() => generateDataset({ numViews: [] }), 'ERR_VALR_ARGUMENT', /numViews/);
  assertThrowsCode(() => generateDataset({ train: -1 }), 'ERR_VALR_ARGUMENT', /train size/);
  assertThrowsCode(() => generateDataset({ families: ['colour' as never] }), 'ERR_VALR_ARGUMENT', /unknown family/);
  assertThrowsCode(() => generateDataset({ imageSize: 3 }), 'ERR_VALR_ARGUMENT', /imageSize/);
  assertThrowsCode(() => generateDataset({ seed: Number.NaN }), 'ERR_VALR_ARGUMENT', /seed/);
  try {
    await makeDataset({ dir: '' });
    assert.unreachable('empty dir accepted');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_VALR_ARGUMENT');
  }
  assertThrowsCode(() => loadDataset(path.join(os.tmpdir(), 'valr-no-such-dataset')), 'ERR_VALR_ARGUMENT', /meta/);

  const dir = tmp('bad');
  try {
    await makeDataset({ ...SMALL, train: 5, val: 5, test: 5, dir });
    assertThrowsCode(() => loaded.view('nope'), 'ERR_VALR_ARGUMENT', /unknown image id/);
    assertThrowsCode(() => loaded.scene('nope'), 'ERR_VALR_ARGUMENT', /unknown scene id/);
    const val = path.join(dir, 'val.jsonl');
    const lines = fs.readFileSync(val, 'utf8').split('\n');
    fs.writeFileSync(val, [lines[0], '{"id": 3}', ...lines.slice(1)].join('\n'));
    assertThrowsCode(() => loadDataset(dir), 'ERR_VALR_ARGUMENT', /val\.jsonl:2: "id"/);
    fs.writeFileSync(val, [lines[0], 'not json', ...lines.slice(1)].join('\n'));
    assertThrowsCode(() => loadDataset(dir), 'ERR_VALR_ARGUMENT', /val\.jsonl:2: not valid JSON/);
    const broken = JSON.parse(lines[0]);
    broken.steps[0].view = 9;
    fs.writeFileSync(val, [JSON.stringify(broken), ...lines.slice(1)].join('\n'));
    assertThrowsCode(() => loadDataset(dir), 'ERR_VALR_ARGUMENT', /val\.jsonl:1: steps\[0\]\.view/);
    const moved = JSON.parse(lines[0]);
    moved.images[0] = 'train-0000-v0';
    fs.writeFileSync(val, [JSON.stringify(moved), ...lines.slice(1)].join('\n'));
    assertThrowsCode(() => loadDataset(dir), 'ERR_VALR_ARGUMENT', /belongs to a train scene/);
    fs.writeFileSync(val, lines.join('\n'));
    loadDataset(dir);
    const metaPath = path.join(dir, 'meta.json');
    const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
    fs.writeFileSync(metaPath, JSON.stringify({ ...meta, version: 99 }));
    assertThrowsCode(() => loadDataset(dir), 'ERR_VALR_ARGUMENT', /version 99/);
    fs.writeFileSync(metaPath, JSON.stringify(meta));
    fs.writeFileSync(path.join(dir, 'views.safetensors'), 'garbage!');
    const l = loadDataset(dir);
    assertThrowsCode(() => l.view(l.imageIds[0]), 'ERR_VALR_ARGUMENT', /views\.safetensors/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
