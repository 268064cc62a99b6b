// buildSequence (the CoT -> latent-interleaved rewrite) and parseAnswer: exact layout and
// labels with and without latent segments, agreement with lib/latent/layout.ts, bad inputs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generateDataset } from '../lib/data/dataset';
import { buildSequence, IGNORE_INDEX, normalizeAnswer, parseAnswer, sampleTexts, type CotSample } from '../lib/data/sequence';
import { specialIds, WordTokenizer } from '../lib/data/tokenizer';
import { splitLatentSample } from '../lib/latent/layout';
import { assertThrowsCode } from './helpers/check';

const test = suite('data-sequence');
const sample: CotSample = {
  images: ['a', 'b'],
  question: 'Is the red cube bigger than the blue cone?',
  steps: [
    { text: 'In view 0 I see the red cube, which is large.', view: 0 },
    { text: 'In view 1 I see the blue cone, which is small.', view: 1 },
  ],
  answer: 'yes',
};
const tok = WordTokenizer.build(sampleTexts([sample]));
const sp = specialIds(tok);
const enc = (s: string) => Array.from(tok.encode(s));

test('layout and labels without latents (K = 0)', () => {
  const r = buildSequence(sample, tok, { tokensPerImage: 3, latentK: 0 });
  const q = enc(sample.question), s0 = enc(sample.steps[0].text), s1 = enc(sample.steps[1].text), a = enc('yes');
  const prompt = [sp.bos, ...Array(6).fill(sp.image), ...q];
  const rest = [sp.step, ...s0, sp.step, ...s1, sp.answer, ...a, sp.eos];
  assert.equal(Array.from(r.ids), [...prompt, ...rest]);
  assert.equal(Array.from(r.labels), [...prompt.map(() => IGNORE_INDEX), ...rest]);
  assert.is(r.promptLength, prompt.length);
  assert.equal(r.stepTargets, []);
  assert.equal(r.stepViews, [0, 1]);
  assert.ok(r.ids instanceof Int32Array && r.labels instanceof Int32Array);
});

test('layout and labels with K latent slots before every step', () => {
  const K = 4;
  const r = buildSequence(sample, tok, { tokensPerImage: 2, latentK: K });
  const q = enc(sample.question), s0 = enc(sample.steps[0].text), s1 = enc(sample.steps[1].text);
  const seg = [sp.latentStart, ...Array(K).fill(sp.slot), sp.latentEnd];
  const segLabels = [sp.latentStart, ...Array(K + 1).fill(IGNORE_INDEX)];
  const prompt = [sp.bos, ...Array(4).fill(sp.image), ...q];
  assert.equal(Array.from(r.ids), [...prompt, ...seg, sp.step, ...s0, ...seg, sp.step, ...s1, sp.answer, tok.id('yes'), sp.eos]);
  assert.equal(Array.from(r.labels), [
    ...prompt.map(() => IGNORE_INDEX),
    ...segLabels, sp.step, ...s0,
    ...segLabels, sp.step, ...s1,
    sp.answer, tok.id('yes'), sp.eos,
  ]);
  assert.is(r.promptLength, prompt.length);
  assert.equal(r.stepTargets, [0, 1]);
  // labels are ids or -100, never anything else
  r.labels.forEach((l, i) => assert.ok(l === IGNORE_INDEX || l === r.ids[i]));
  // the trainer's splitter accepts it: one segment per step, no target on slots / </latent>
  const layout = splitLatentSample(r.ids, r.labels, K, { latentStart: sp.latentStart, latentEnd: sp.latentEnd, slot: sp.slot });
  assert.is(layout.segments, 2);
  // the last question token predicts <latent>; <latent> itself predicts nothing (next is a slot);
  // the piece after a segment starts at </latent>, which predicts <step>
  const first = layout.pieceTargets[0];
  assert.is(layout.pieces[0][first.length - 1], sp.latentStart);
  assert.is(first[first.length - 2], sp.latentStart);
  assert.is(first[first.length - 1], IGNORE_INDEX);
  assert.is(layout.pieces[1][0], sp.latentEnd);
  assert.is(layout.pieceTargets[1][0], sp.step);
});

test('every dataset sample builds, one segment per step, targets in range', () => {
  const ds = generateDataset({ seed: 2, train: 25, val: 0, test: 0 });
  const t = WordTokenizer.build(sampleTexts(ds.splits.train));
  for (const s of ds.splits.train) {
    const r = buildSequence(s, t, { tokensPerImage: 16, latentK: 9 });
    assert.is(r.stepTargets.length, s.steps.length);
    assert.ok(r.stepTargets.every((v) => v >= 0 && v < s.images.length));
    assert.is(r.ids.filter((id) => id === specialIds(t).image).length, 16 * s.images.length);
    assert.is(r.ids.filter((id) => id === specialIds(t).slot).length, 9 * s.steps.length);
    assert.is(parseAnswer(r.ids, t), normalizeAnswer(s.answer, t));
    assert.is(parseAnswer(r.ids, t), s.answer);
  }
});

test('a literal special token in the text stays plain words', () => {
  const t = WordTokenizer.build(['answer < >', 'the']);
  const r = buildSequence({ images: [], question: 'the <answer>', steps: [], answer: 'the' }, t, { tokensPerImage: 1, latentK: 2 });
  const sp2 = specialIds(t);
  assert.is(r.ids.filter((id) => id === sp2.answer).length, 1);
  assert.is(parseAnswer(r.ids, t), 'the');
});

test('parseAnswer', () => {
  const ids = (...parts: (number | string)[]) => parts.flatMap((p) => (typeof p === 'number' ? [p] : enc(p)));
  assert.is(parseAnswer(ids(sp.step, 'red cube', sp.answer, 'yes', sp.eos, sp.pad, sp.pad), tok), 'yes');
  assert.is(parseAnswer(ids(sp.answer, 'no', sp.answer, 'yes'), tok), 'yes', 'the last <answer>, no <eos> needed');
  assert.is(parseAnswer(ids(sp.answer, 'red cube', sp.eos, 'blue'), tok), 'red cube');
  assert.is(parseAnswer(ids(sp.step, 'red cube', sp.eos), tok), null);
  assert.is(parseAnswer(ids(sp.answer, sp.eos), tok), null);
  assert.is(parseAnswer([], tok), null);
  assert.is(parseAnswer(new Int32Array(ids(sp.answer, 'blue')), tok), 'blue');
  assert.is(normalizeAnswer('Red Cube!', WordTokenizer.build(['red cube !'])), 'red cube !');
  assertThrowsCode(() => parseAnswer(null as never, tok), 'ERR_VALR_ARGUMENT');
  assertThrowsCode(() => parseAnswer([1], {} as never), 'ERR_VALR_ARGUMENT');
});

test('bad inputs are ValrErrors', () => {
  const opts = { tokensPerImage: 1, latentK: 1 };
  assertThrowsCode(() => buildSequence({ ...sample, steps: [{ text: 'x', view: 2 }] }, tok, opts), 'ERR_VALR_RANGE', /steps\[0\]\.view 2/);
  assertThrowsCode(() => buildSequence({ ...sample, steps: [{ text: 'x', view: -1 }] }, tok, opts), 'ERR_VALR_RANGE');
  assertThrowsCode(() => buildSequence(sample, tok, { tokensPerImage: -1, latentK: 1 }), 'ERR_VALR_ARGUMENT', /tokensPerImage/);
  assertThrowsCode(() => buildSequence(sample, tok, { tokensPerImage: 1, latentK: 1.5 }), 'ERR_VALR_ARGUMENT', /latentK/);
  assertThrowsCode(() => buildSequence(sample, tok, null as never), 'ERR_VALR_ARGUMENT');
  assertThrowsCode(() => buildSequence({ ...sample, question: 3 } as never, tok, opts), 'ERR_VALR_ARGUMENT', /question/);
  assertThrowsCode(() => buildSequence(sample, {} as never, opts), 'ERR_VALR_ARGUMENT', /WordTokenizer/);
});

test.run();
