// The word-level tokenizer: special ids, splitting rule, round trips on the dataset's text,
// JSON round trip, Hugging Face WordLevel files and the clear errors for other models.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateDataset } from '../lib/data/dataset';
import { sampleTexts } from '../lib/data/sequence';
import { SPECIAL_TOKENS, specialIds, WordTokenizer } from '../lib/data/tokenizer';
import { assertThrowsCode } from './helpers/check';

const test = suite('data-tokenizer');
const ds = generateDataset({ seed: 1, train: 50, val: 10, test: 10 });
const texts = sampleTexts(ds.splits.train);

test('special tokens sit at ids 0..9 in the fixed order; digits follow', () => {
  const tok = WordTokenizer.build(texts);
  assert.equal([...SPECIAL_TOKENS], ['<pad>', '<unk>', '<bos>', '<eos>', '<image>', '<latent>', '</latent>', '<slot>', '<step>', '<answer>']);
  SPECIAL_TOKENS.forEach((t, i) => {
    assert.is(tok.id(t), i);
    assert.is(tok.token(i), t);
  });
  assert.equal(specialIds(tok), { pad: 0, unk: 1, bos: 2, eos: 3, image: 4, latentStart: 5, latentEnd: 6, slot: 7, step: 8, answer: 9 });
  for (let d = 0; d <= 9; d++) assert.is(tok.id(String(d)), 10 + d);
  assert.ok(tok.vocabSize > 40 && tok.vocabSize < 200, `vocab ${tok.vocabSize}`);
});

test('splitting: lower case, punctuation apart, digits one by one, specials recognised', () => {
  const tok = WordTokenizer.build(['the red cube is 12 units away, left?']);
  assert.equal(tok.tokenize('In view 12, I see THE red cube; 0 new.'), ['in', 'view', '1', '2', ',', 'i', 'see', 'the', 'red', 'cube', ';', '0', 'new', '.']);
  assert.equal(tok.tokenize('<image><image> which?'), ['<image>', '<image>', 'which', '?']);
  assert.equal(tok.tokenize('<image> x', { allowSpecial: false }), ['<', 'image', '>', 'x']);
  const ids = tok.encode('The RED zebra');
  assert.equal(Array.from(ids), [tok.id('the'), tok.id('red'), specialIds(tok).unk]);
  assert.ok(ids instanceof Int32Array);
  assert.is(tok.decode(tok.encode('<bos> red cube <eos>')), '<bos> red cube <eos>');
  assert.is(tok.decode(tok.encode('<bos> red cube <eos>'), { skipSpecial: true }), 'red cube');
});

test('round trips on every text of the dataset', () => {
  const tok = WordTokenizer.build(texts);
  const unk = specialIds(tok).unk;
  for (const t of texts) {
    const ids = tok.encode(t);
    assert.ok(!ids.includes(unk), `unknown word in training text: ${t}`);
    const text = tok.decode(ids);
    assert.is(text, tok.tokenize(t).join(' '));
    assert.equal(Array.from(tok.encode(text)), Array.from(ids));
  }
  // held-out text: the templates' words are all there, only unseen words are <unk>
  for (const s of ds.splits.test) {
    const ids = tok.encode(s.question);
    assert.ok(ids.length > 3);
  }
});

test('build is deterministic and independent of text order; options', () => {
  const a = WordTokenizer.build(texts), b = WordTokenizer.build(texts.slice().reverse());
  assert.equal(a.toJSON(), b.toJSON());
  const small = WordTokenizer.build(texts, { maxVocab: 25 });
  assert.is(small.vocabSize, 25);
  const rare = WordTokenizer.build(['a a a b'], { minCount: 2 });
  assert.ok(rare.has('a') && !rare.has('b'));
  const extra = WordTokenizer.build([], { extraTokens: ['yes', 'no'] });
  assert.is(extra.id('yes'), 20);
  assert.is(extra.vocabSize, 22);
  assertThrowsCode(() => WordTokenizer.build('abc' as never), 'ERR_VALR_ARGUMENT', /texts/);
  assertThrowsCode(() => WordTokenizer.build([], { minCount: 0 }), 'ERR_VALR_ARGUMENT', /minCount/);
  assertThrowsCode(() => WordTokenizer.build([], { maxVocab: 5 }), 'ERR_VALR_ARGUMENT', /maxVocab/);
  assertThrowsCode(() => WordTokenizer.build([], { extraTokens: ['a b'] }), 'ERR_VALR_ARGUMENT', /extraTokens/);
});

test('toJSON / fromJSON round trip; bad JSON is refused', () => {
  const tok = WordTokenizer.build(texts);
  const json = JSON.parse(JSON.stringify(tok));
  const back = WordTokenizer.fromJSON(json);
  assert.is(back.vocabSize, tok.vocabSize);
  for (const t of texts.slice(0, 50)) assert.equal(Array.from(back.encode(t)), Array.from(tok.encode(t)));
  assert.equal(specialIds(back), specialIds(tok));
  assertThrowsCode(() => WordTokenizer.fromJSON({ ...json, type: 'bpe' }), 'ERR_VALR_ARGUMENT', /type/);
  assertThrowsCode(() => WordTokenizer.fromJSON({ ...json, vocab: [...json.vocab, 'red'] }), 'ERR_VALR_ARGUMENT', /twice/);
  assertThrowsCode(() => WordTokenizer.fromJSON({ ...json, special: { ...json.special, slot: 'nope' } }), 'ERR_VALR_ARGUMENT', /special\.slot/);
  assertThrowsCode(() => WordTokenizer.fromJSON(null), 'ERR_VALR_ARGUMENT');
  assertThrowsCode(() => tok.token(tok.vocabSize), 'ERR_VALR_RANGE', /out of range/);
  assertThrowsCode(() => tok.decode([0, -1]), 'ERR_VALR_RANGE');
  assertThrowsCode(() => tok.encode(3 as never), 'ERR_VALR_ARGUMENT', /string/);
});

function writeJson(obj: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'valr-tok-'));
  const file = path.join(dir, 'tokenizer.json');
  fs.writeFileSync(file, JSON.stringify(obj));
  return file;
}

test('fromHuggingFace: WordLevel files keep their ids; missing specials are appended', () => {
  const file = writeJson({
    version: '1.0',
    added_tokens: [{ id: 0, content: '[UNK]', special: true }, { id: 1, content: '[PAD]', special: true }],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }, { type: 'StripAccents' }] },
    pre_tokenizer: { type: 'Whitespace' },
    padding: { pad_token: '[PAD]', pad_id: 1 },
    model: { type: 'WordLevel', vocab: { '[UNK]': 0, '[PAD]': 1, the: 2, red: 3, cube: 4, '?': 5, '12': 6, '<answer>': 7 }, unk_token: '[UNK]' },
  });
  const tok = WordTokenizer.fromHuggingFace(file);
  assert.is(tok.id('red'), 3);
  assert.is(tok.id('<answer>'), 7);
  assert.equal(Array.from(tok.encode('The RÉD cube 12?')), [2, 3, 4, 6, 5]);
  assert.equal(Array.from(tok.encode('a blue cube')), [0, 0, 4]);
  const sp = specialIds(tok);
  assert.is(sp.unk, 0);
  assert.is(sp.pad, 1);
  assert.is(sp.answer, 7);
  // the other roles are appended after the last id, in the fixed order
  assert.equal([sp.bos, sp.eos, sp.image, sp.latentStart, sp.latentEnd, sp.slot, sp.step], [8, 9, 10, 11, 12, 13, 14]);
  assert.is(tok.vocabSize, 15);
  assert.is(tok.decode(tok.encode('[PAD] the <latent> cube')), '[PAD] the <latent> cube');
  const back = WordTokenizer.fromJSON(JSON.parse(JSON.stringify(tok)));
  assert.equal(Array.from(back.encode('The RÉD cube 12?')), [2, 3, 4, 6, 5]);
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('fromHuggingFace: other models and broken files are clear errors', () => {
  const cases: [unknown, RegExp][] = [
    [{ model: { type: 'BPE', vocab: { a: 0 }, merges: [] } }, /"BPE" is not supported yet/],
    [{ model: { type: 'Unigram', vocab: [['a', 0]] } }, /"Unigram" is not supported yet/],
    [{ model: { type: 'WordPiece', vocab: { a: 0 }, unk_token: '[UNK]' } }, /"WordPiece" is not supported yet/],
    [{ model: { vocab: { a: 0 }, merges: [] } }, /"BPE" is not supported yet/],
    [{ model: { type: 'WordLevel', vocab: { a: 0, b: 2 }, unk_token: 'a' } }, /not contiguous: id 1 is missing/],
    [{ model: { type: 'WordLevel', vocab: { a: 0, b: 1 }, unk_token: '<unk>' } }, /unk_token "<unk>"/],
    [{ model: { type: 'WordLevel', vocab: { a: 0, '<unk>': 1 }, unk_token: '<unk>' }, pre_tokenizer: { type: 'ByteLevel' } }, /pre-tokenizer "ByteLevel" is not supported/],
    [{ model: { type: 'WordLevel', vocab: { a: 0, '<unk>': 1 }, unk_token: '<unk>' }, normalizer: { type: 'Precompiled' } }, /normalizer "Precompiled" is not supported/],
    [{ nothing: 1 }, /no "model"/],
  ];
  for (const [obj, re] of cases) {
    const file = writeJson(obj);
    assertThrowsCode(() => WordTokenizer.fromHuggingFace(file), 'ERR_VALR_ARGUMENT', re);
    fs.rmSync(path.dirname(file), { recursive: true });
  }
  assertThrowsCode(() => WordTokenizer.fromHuggingFace('/nonexistent/tokenizer.json'), 'ERR_VALR_ARGUMENT', /cannot read/);
  const file = writeJson({});
  fs.writeFileSync(file, '{not json');
  assertThrowsCode(() => WordTokenizer.fromHuggingFace(file), 'ERR_VALR_ARGUMENT', /not valid JSON/);
  fs.rmSync(path.dirname(file), { recursive: true });
});

test.run();
