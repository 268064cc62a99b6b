// Question generation on its own: every question needs several views, step i is about view
// i, preferred answers are honoured, the same generator state gives the same question, and
// bad arguments are ValrErrors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../lib/data/prng';
import { defaultMinPixels, FAMILIES, makeQuestion, visibilityFromCounts, type Visibility } from '../lib/data/questions';
import { objectPixelCounts, renderObjectIds } from '../lib/data/render';
import { generateScene, type Scene } from '../lib/data/scene';
import { assertThrowsCode } from './helpers/check';

const test = suite('data-questions');

function visibility(scene: Scene): Visibility {
  const counts = scene.cameras.map((_, v) => objectPixelCounts({ objectId: renderObjectIds(scene, v) }, scene.objects.length));
  return visibilityFromCounts(counts, defaultMinPixels(32, 32));
}

const scenes = Array.from({ length: 40 }, (_, i) => generateScene({ seed: 1000 + i, numViews: 2 + (i % 5) }));
const vis = scenes.map(visibility);

test('every family appears; questions need several views; steps follow the views', () => {
  const made: Record<string, number> = {};
  scenes.forEach((scene, i) => {
    for (const f of FAMILIES) {
      const q = makeQuestion(f, scene, vis[i], new Rng(i));
      if (!q) continue;
      made[f] = (made[f] ?? 0) + 1;
      assert.is(q.family, f);
      assert.is(q.steps.length, scene.cameras.length);
      q.steps.forEach((s, v) => assert.is(s.view, v));
      assert.ok(/^[a-z0-9]+$/.test(q.answer), `single-word answer: ${q.answer}`);
      // the objects asked about are never all visible in a single view (count: the counted ones)
      const objs = q.objects;
      if (f === 'count') {
        const perView = vis[i].visible.map((row) => objs.filter((o) => row[o]).length);
        assert.ok(Math.max(...perView) < objs.length, `${f}: one view is enough`);
      } else if (f !== 'order') {
        assert.ok(vis[i].visible.every((row) => !objs.every((o) => row[o])), `${f}: one view is enough`);
      }
      // and none of them is only partly visible anywhere
      for (const o of objs) assert.ok(vis[i].partial.every((row) => !row[o]));
    }
  });
  for (const f of FAMILIES) assert.ok((made[f] ?? 0) >= 5, `${f}: ${made[f] ?? 0} questions from 40 scenes`);
});

test('the same generator state gives the same question', () => {
  for (const f of FAMILIES) {
    const a = makeQuestion(f, scenes[3], vis[3], new Rng(5)), b = makeQuestion(f, scenes[3], vis[3], new Rng(5));
    assert.equal(a, b);
  }
});

test('preferred answers are honoured where the family can choose', () => {
  let sized = 0;
  scenes.forEach((scene, i) => {
    for (const want of ['yes', 'no']) {
      const q = makeQuestion('size', scene, vis[i], new Rng(i), { prefer: want });
      if (q) {
        assert.is(q.answer, want);
        sized++;
      }
    }
  });
  assert.ok(sized > 0);
});

test('bad arguments are ValrErrors', () => {
  const s = scenes[0];
  assertThrowsCode(() => makeQuestion('colour' as never, s, vis[0], new Rng(1)), 'ERR_VALR_ARGUMENT', /unknown family 'colour'/);
  assertThrowsCode(() => makeQuestion('count', s, { visible: [], partial: [] }, new Rng(1)), 'ERR_VALR_SHAPE', /visibility\.visible/);
  assertThrowsCode(() => makeQuestion('count', s, null as never, new Rng(1)), 'ERR_VALR_SHAPE');
});

test.run();
