// prepareData takes a trained model's tokenizer: `valr eval` used to rebuild the vocabulary
// from --data, so a model evaluated on another dataset read shifted ids without a word.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { makeDataset } from '../lib/data/dataset';
import { WordTokenizer } from '../lib/data/tokenizer';
import { prepareData, unknownWords } from '../lib/pipeline/experiment';

const test = suite('prepareData');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'valr-prep-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a given tokenizer is used as is; words it lacks are reported', async () => {
  const data = path.join(dir, 'd');
  await makeDataset({ dir: data, seed: 5, train: 12, val: 2, test: 6, numViews: [2] });
  const own = prepareData(data);
  // a model trained on other texts: its vocabulary has different ids and lacks most words
  const modelTok = WordTokenizer.build(['how many cubes are there across the views ?', 'in view 0 i see 2 cubes .']);
  const p = prepareData(data, modelTok);
  assert.ok(p.tok === modelTok, 'the given tokenizer is used');
  assert.not.equal(p.tok.vocabSize, own.tok.vocabSize);
  // the dataset's own vocabulary (12 training samples) misses a few test words; the model's many more
  const ownUnknown = unknownWords(own, own.ds.splits.test);
  const unknown = unknownWords(p, p.ds.splits.test);
  assert.ok(unknown.length > ownUnknown.length + 3, `unknown: ${unknown}; own: ${ownUnknown}`);
  for (const w of ownUnknown) assert.ok(own.tok.encode(w, { allowSpecial: false }).includes(own.ids.unk), w);
  for (const w of unknown) assert.ok(modelTok.encode(w, { allowSpecial: false }).includes(p.ids.unk), w);
  assert.ok(!unknown.includes('view') && !unknown.includes('how'));
});

test.run();
