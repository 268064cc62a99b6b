// The data regime the image-use work relies on: count answers strictly balanced between
// 2 and 3, "view i" markers before each image's placeholders (untrained, and nothing else
// changes), and up to 8 views per sample.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generateDataset, type Sample } from '../lib/data/dataset';
import { buildSequence, IGNORE_INDEX, sampleTexts, type CotSample } from '../lib/data/sequence';
import { specialIds, WordTokenizer } from '../lib/data/tokenizer';
import { assertThrowsCode } from './helpers/check';

const test = suite('data-regime');

test('count answers: 2 and 3 each half of the count samples (+-1), nothing else', () => {
  for (const seed of [1, 42, 2024]) {
    const t0 = performance.now();
    const ds = generateDataset({ train: 200, val: 0, test: 0, seed });
    const ms = performance.now() - t0;
    const count = ds.splits.train.filter((s) => s.family === 'count');
    assert.is(count.length, 40, `seed ${seed}: 200 samples over 5 families`);
    const tally: Record<string, number> = {};
    for (const s of count) tally[s.answer] = (tally[s.answer] ?? 0) + 1;
    console.log(`    seed ${seed}: count answers ${JSON.stringify(tally)} (${ms.toFixed(0)} ms)`);
    assert.equal(Object.keys(tally).sort(), ['2', '3'], `seed ${seed}: answers ${JSON.stringify(tally)}`);
    assert.ok(Math.abs(tally['2'] - count.length / 2) <= 1, `seed ${seed}: '2' x${tally['2']} of ${count.length}`);
    assert.ok(Math.abs(tally['3'] - count.length / 2) <= 1, `seed ${seed}: '3' x${tally['3']} of ${count.length}`);
  }
  // an odd count quota: 205 samples -> 41 count questions -> 21 / 20
  const odd = generateDataset({ train: 205, val: 0, test: 0, seed: 9 }).splits.train.filter((s) => s.family === 'count');
  assert.is(odd.length, 41);
  const twos = odd.filter((s) => s.answer === '2').length, threes = odd.filter((s) => s.answer === '3').length;
  assert.is(twos + threes, 41);
  assert.ok(Math.abs(twos - threes) === 1, `${twos} vs ${threes}`);
});

// ------------------------------------------------------------------------------------
// View markers

const ds = generateDataset({ seed: 6, train: 30, val: 0, test: 0, numViews: [2, 3, 4, 5] });
const tok = WordTokenizer.build(sampleTexts(ds.splits.train));
const sp = specialIds(tok);

/** The marker tokens of view i, from the vocabulary (not through buildSequence's encoder). */
function marker(i: number): number[] {
  assert.ok(tok.has('view') && tok.has(String(i)), `'view' and '${i}' are words of the vocabulary`);
  return [tok.id('view'), tok.id(String(i))];
}

function checkMarkers(s: CotSample, tpi: number, latentK: number) {
  const plain = buildSequence(s, tok, { tokensPerImage: tpi, latentK });
  const off = buildSequence(s, tok, { tokensPerImage: tpi, latentK, viewMarkers: false });
  const on = buildSequence(s, tok, { tokensPerImage: tpi, latentK, viewMarkers: true });
  // absent and false are the same, and the same as before: <bos>, placeholders, question
  assert.equal(Array.from(off.ids), Array.from(plain.ids));
  assert.equal(Array.from(off.labels), Array.from(plain.labels));
  assert.is(off.promptLength, plain.promptLength);
  const q = Array.from(tok.encode(s.question, { allowSpecial: false }));
  assert.equal(Array.from(plain.ids.slice(0, plain.promptLength)), [sp.bos, ...s.images.flatMap(() => new Array<number>(tpi).fill(sp.image)), ...q]);

  // with markers: <bos>, then per image "view i" and its placeholders, then the question
  const expectedPrompt = [sp.bos, ...s.images.flatMap((_, i) => [...marker(i), ...new Array<number>(tpi).fill(sp.image)]), ...q];
  assert.equal(Array.from(on.ids.slice(0, on.promptLength)), expectedPrompt);
  const extra = s.images.reduce((n, _, i) => n + marker(i).length, 0);
  assert.is(on.ids.length, plain.ids.length + extra);
  assert.is(on.promptLength, plain.promptLength + extra);
  // the marker right before each image's first placeholder
  let at = 1;
  for (let i = 0; i < s.images.length; i++) {
    const m = marker(i);
    assert.equal(Array.from(on.ids.slice(at, at + m.length)), m, `marker ${i}`);
    assert.is(on.ids[at + m.length], sp.image);
    assert.is(on.ids[at - 1], i === 0 ? sp.bos : sp.image);
    at += m.length + tpi;
  }
  // nothing in the prompt is trained
  assert.ok(Array.from(on.labels.slice(0, on.promptLength)).every((l) => l === IGNORE_INDEX));
  // everything after the prompt is identical
  assert.equal(Array.from(on.ids.slice(on.promptLength)), Array.from(plain.ids.slice(plain.promptLength)));
  assert.equal(Array.from(on.labels.slice(on.promptLength)), Array.from(plain.labels.slice(plain.promptLength)));
  assert.equal(on.stepTargets, plain.stepTargets);
  assert.equal(on.stepViews, plain.stepViews);
  // as many placeholders as before
  assert.is(on.ids.filter((id) => id === sp.image).length, tpi * s.images.length);
}

test('viewMarkers: "view i" before image i\'s placeholders, untrained; the rest unchanged', () => {
  for (const s of ds.splits.train) {
    checkMarkers(s, 16, 0);
    checkMarkers(s, 3, 4);
  }
  const seen = new Set(ds.splits.train.map((s) => s.numViews));
  assert.ok(seen.size >= 3, `view counts ${[...seen]}`);
});

test('viewMarkers with no images: nothing is added', () => {
  const s: CotSample = { images: [], question: 'how many objects are there ?', steps: [], answer: '3' };
  const t = WordTokenizer.build(sampleTexts([s]));
  const a = buildSequence(s, t, { tokensPerImage: 4, latentK: 0, viewMarkers: true });
  const b = buildSequence(s, t, { tokensPerImage: 4, latentK: 0 });
  assert.equal(Array.from(a.ids), Array.from(b.ids));
});

// ------------------------------------------------------------------------------------
// Up to 8 views

test('numViews up to 8 is accepted, 9 refused', () => {
  const t0 = performance.now();
  const d8 = generateDataset({ seed: 4, train: 10, val: 0, test: 0, numViews: [8] });
  const mix = generateDataset({ seed: 4, train: 12, val: 0, test: 0, numViews: [2, 7, 8] });
  console.log(`    8-view datasets: ${(performance.now() - t0).toFixed(0)} ms`);
  assert.is(d8.splits.train.length, 10);
  assert.equal(d8.meta.numViews, [8]);
  const check = (s: Sample, d: typeof d8) => {
    assert.is(s.images.length, s.numViews);
    assert.is(s.steps.length, s.numViews, 'one step per view');
    assert.ok(s.steps.every((st) => st.view >= 0 && st.view < s.numViews));
    for (const id of s.images) {
      const v = d.views.get(id);
      assert.ok(v && v.width === 32 && v.height === 32, `render of ${id}`);
    }
  };
  for (const s of d8.splits.train) {
    assert.is(s.numViews, 8);
    check(s, d8);
  }
  for (const s of mix.splits.train) check(s, mix);
  assert.equal(Object.keys(mix.meta.splits.train.numViews).sort(), ['2', '7', '8']);
  assert.equal(mix.meta.splits.train.numViews, { 2: 4, 7: 4, 8: 4 });
  // 8-view samples build with markers up to "view 7"
  const t8 = WordTokenizer.build(sampleTexts(d8.splits.train));
  const seq = buildSequence(d8.splits.train[0], t8, { tokensPerImage: 2, latentK: 0, viewMarkers: true });
  const ids = Array.from(seq.ids);
  assert.ok(t8.has('view') && t8.has('7'));
  const v7 = ids.findIndex((id, i) => id === t8.id('view') && ids[i + 1] === t8.id('7'));
  assert.ok(v7 > 0 && ids[v7 + 2] === specialIds(t8).image, 'view 7 before the last image');

  for (const nv of [[9], [2, 9], [1], [0], [8.5]]) {
    assertThrowsCode(() => generateDataset({ seed: 4, train: 5, val: 0, test: 0, numViews: nv }), 'ERR_VALR_ARGUMENT', /numViews/);
  }
});

test.run();
