// Users' JSONL chain-of-thought data: validation errors naming the line, image files checked,
// decoding through a pluggable decoder (sharp by default, optional), RGB conversion and the
// antialiased resize.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadUserJsonl, parseUserJsonl, rawToRgb, resizeImage, type RawImage } from '../lib/data/user-data';
import { buildSequence, sampleTexts } from '../lib/data/sequence';
import { WordTokenizer } from '../lib/data/tokenizer';
import { assertClose, assertThrowsCode } from './helpers/check';

const test = suite('data-user');

/** Test "images": JSON {width, height, channels, data} in a file named .png/.jpg. */
const fakeDecode = async (file: string): Promise<RawImage> => {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  return { width: j.width, height: j.height, channels: j.channels, data: Uint8Array.from(j.data) };
};

function fixture(lines: string[], images: Record<string, RawImage | string>): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'valr-user-'));
  for (const [name, img] of Object.entries(images)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), typeof img === 'string' ? img : JSON.stringify({ ...img, data: Array.from(img.data) }));
  }
  const file = path.join(dir, 'data.jsonl');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return { dir, file };
}

const solid = (w: number, h: number, rgb: [number, number, number]): RawImage => ({
  width: w, height: h, channels: 3, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => rgb[i % 3]),
});

const good = {
  id: 's1',
  images: ['views/a.png', 'views/b.jpg'],
  question: 'Is the mug left of the kettle?',
  steps: [{ text: 'The first view shows the mug.', view: 0 }, { text: 'The second shows the kettle.', view: 1 }],
  answer: 'yes',
};

test('loads, decodes each image once and resizes to [3, S, S]', async () => {
  let calls = 0;
  const decode = async (f: string) => {
    calls++;
    return fakeDecode(f);
  };
  const { dir, file } = fixture(
    [JSON.stringify(good), '', JSON.stringify({ ...good, id: 's2', images: ['views/b.jpg'], steps: [], family: 'direction' })],
    { 'views/a.png': solid(40, 20, [255, 0, 0]), 'views/b.jpg': solid(7, 9, [0, 128, 255]) },
  );
  try {
    const d = await loadUserJsonl(file, { imageSize: 16, decode });
    assert.is(calls, 2);
    assert.is(d.samples.length, 2);
    assert.equal(d.samples[0].images, ['views/a.png', 'views/b.jpg']);
    assert.is(d.samples[0].family, 'user');
    assert.is(d.samples[1].family, 'direction');
    assert.is(d.samples[1].line, 3);
    assert.is(d.samples[0].numViews, 2);
    const a = d.view('views/a.png');
    assert.is(a.width, 16);
    assert.is(a.rgb.length, 3 * 16 * 16);
    assertClose(a.rgb.subarray(0, 256), new Float32Array(256).fill(1), 1e-6, 0, 'red channel');
    assertClose(a.rgb.subarray(256, 512), new Float32Array(256), 1e-6, 0, 'green channel');
    const b = d.images.get('views/b.jpg')!;
    assertClose(b.subarray(256, 512), new Float32Array(256).fill(128 / 255), 1e-6, 0, 'upscaled constant stays constant');
    // the samples feed buildSequence directly
    const tok = WordTokenizer.build(sampleTexts(d.samples));
    const r = buildSequence(d.samples[0], tok, { tokensPerImage: 4, latentK: 1 });
    assert.equal(r.stepTargets, [0, 1]);
    const cropped = await loadUserJsonl(file, { imageSize: 4, decode: fakeDecode, fit: 'crop' });
    assert.is(cropped.view('views/a.png').rgb.length, 48);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('resizeImage: area-like when shrinking, exact on constants, crop window', () => {
  // a 0/1 checkerboard shrunk averages to about 0.5 (nearest-neighbour would alias to 0 or 1)
  const checker = (n: number) => Float32Array.from({ length: n * n }, (_, i) => ((i % n) + Math.floor(i / n)) % 2);
  const src = checker(4);
  for (const [n, m] of [[4, 2], [8, 2], [16, 4], [32, 3], [4, 1]]) {
    const out = resizeImage(checker(n), [1, n, n], [m, m]);
    assert.ok(out.every((v) => v > 0.4 && v < 0.6), `${n} -> ${m}: ${Array.from(out).map((v) => v.toFixed(2))}`);
  }
  // interior pixels of an exact 2x shrink are the exact average
  const inner = resizeImage(checker(8), [1, 8, 8], [4, 4]);
  assertClose([inner[5], inner[6], inner[9], inner[10]], [0.5, 0.5, 0.5, 0.5], 1e-6, 0, 'interior');
  // constants stay constant at any size
  assertClose(resizeImage(new Float32Array(35).fill(0.3), [1, 5, 7], [3, 11]), new Float32Array(33).fill(0.3), 1e-6, 0, 'constant');
  // identity size is the identity
  const ramp = Float32Array.from({ length: 12 }, (_, i) => i / 12);
  assertClose(resizeImage(ramp, [1, 3, 4], [3, 4]), ramp, 1e-6, 0, 'identity');
  // a crop of the left half of a left-dark/right-bright image is dark
  const half = Float32Array.from({ length: 16 }, (_, i) => (i % 4 < 2 ? 0 : 1));
  const left = resizeImage(half, [1, 4, 4], [2, 2], { x: 0, y: 0, w: 1, h: 4 });
  assert.ok(left.every((v) => v < 0.3), `${Array.from(left)}`);
  assertThrowsCode(() => resizeImage(src, [1, 4, 3], [2, 2]), 'ERR_VALR_ARGUMENT');
});

test('rawToRgb: grey, grey+alpha and RGBA over white', () => {
  assertClose(rawToRgb({ width: 1, height: 1, channels: 1, data: Uint8Array.from([51]) }), [0.2, 0.2, 0.2], 1e-6, 0);
  assertClose(rawToRgb({ width: 1, height: 1, channels: 2, data: Uint8Array.from([0, 0]) }), [1, 1, 1], 1e-6, 0);
  assertClose(rawToRgb({ width: 1, height: 1, channels: 4, data: Uint8Array.from([255, 0, 0, 255]) }), [1, 0, 0], 1e-6, 0);
  assertThrowsCode(() => rawToRgb({ width: 2, height: 1, channels: 3, data: new Uint8Array(5) }), 'ERR_VALR_ARGUMENT', /bytes/);
  assertThrowsCode(() => rawToRgb({ width: 1, height: 1, channels: 5, data: new Uint8Array(5) }), 'ERR_VALR_ARGUMENT', /channels/);
});

test('validation errors name the file and line', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...good, id: '' }, /:2: "id" must be a non-empty string/],
    [{ ...good, id: 'first' }, /:2: "id" "first" is used by an earlier line/],
    [{ ...good, images: [] }, /:2: "images" must be a non-empty array/],
    [{ ...good, images: ['a.gif'] }, /:2: images\[0\] "a.gif" is not a .png, .jpg or .jpeg file/],
    [{ ...good, question: ' ' }, /:2: "question"/],
    [{ ...good, steps: {} }, /:2: "steps" must be an array/],
    [{ ...good, steps: [{ text: 'x', view: 2 }] }, /:2: steps\[0\]\.view must be an integer index into "images" \(0\.\.1\), got 2/],
    [{ ...good, steps: [{ text: '', view: 0 }] }, /:2: steps\[0\]\.text/],
    [{ ...good, answer: 4 }, /:2: "answer"/],
    [{ ...good, family: 1 }, /:2: "family"/],
    [[1, 2], /:2: expected a JSON object/],
  ];
  const first = JSON.stringify({ ...good, id: 'first' });
  for (const [obj, re] of cases) {
    assertThrowsCode(() => parseUserJsonl(`${first}\n${JSON.stringify(obj)}\n`, 'my.jsonl'), 'ERR_VALR_ARGUMENT', new RegExp(`my\\.jsonl${re.source}`));
  }
  assertThrowsCode(() => parseUserJsonl(`${first}\n{oops\n`, 'my.jsonl'), 'ERR_VALR_ARGUMENT', /my\.jsonl:2: not valid JSON/);
});

test('missing files, undecodable images and bad options', async () => {
  const { dir, file } = fixture([JSON.stringify(good)], { 'views/a.png': solid(2, 2, [1, 2, 3]), 'views/b.jpg': 'not an image' });
  const rejects = async (p: Promise<unknown>, code: string, re: RegExp) => {
    try {
      await p;
    } catch (e) {
      const err = e as Error & { code?: string };
      assert.is(err.code, code, err.message);
      assert.match(err.message, re);
      return;
    }
    assert.unreachable(`expected ${code}`);
  };
  try {
    await rejects(loadUserJsonl(file, { imageSize: 8, decode: fakeDecode }), 'ERR_VALR_ARGUMENT', /data\.jsonl:1: images\[1\] "views\/b\.jpg": cannot be decoded/);
    fs.rmSync(path.join(dir, 'views/b.jpg'));
    await rejects(loadUserJsonl(file, { imageSize: 8, decode: fakeDecode }), 'ERR_VALR_ARGUMENT', /data\.jsonl:1: images\[1\] "views\/b\.jpg" does not exist/);
    await rejects(loadUserJsonl(file, { imageSize: 0, decode: fakeDecode }), 'ERR_VALR_ARGUMENT', /imageSize/);
    await rejects(loadUserJsonl(file, { imageSize: 8, fit: 'zoom' as never }), 'ERR_VALR_ARGUMENT', /fit/);
    await rejects(loadUserJsonl(path.join(dir, 'none.jsonl'), { imageSize: 8 }), 'ERR_VALR_ARGUMENT', /cannot read/);
    // without a decoder, sharp is needed: a clear error when it is not installed
    let hasSharp = true;
    try {
      require.resolve('sharp');
    } catch {
      hasSharp = false;
    }
    if (!hasSharp) {
      fs.writeFileSync(path.join(dir, 'views/b.jpg'), 'x');
      await rejects(loadUserJsonl(file, { imageSize: 8 }), 'ERR_VALR_NO_BINARY', /npm install sharp/);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('real PNG and JPEG files decode through sharp and resize to [3, S, S]', async () => {
  let sharp: any;
  try {
    sharp = require('sharp');
  } catch {
    console.log('data-user.test.ts: sharp is not installed; real-file decoding not checked');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'valr-user-real-'));
  try {
    // 16x16: left half red, right half blue (PNG), and a flat green JPEG.
    const px = Buffer.alloc(16 * 16 * 3);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) px.set(x < 8 ? [255, 0, 0] : [0, 0, 255], (y * 16 + x) * 3);
    await sharp(px, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(dir, 'a.png'));
    await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 0, g: 200, b: 0 } } }).jpeg({ quality: 95 }).toFile(path.join(dir, 'b.jpg'));
    const line = { id: 's0', images: ['a.png', 'b.jpg'], question: 'which colour is on the left?', steps: [{ text: 'view 0 shows red on the left.', view: 0 }], answer: 'red' };
    fs.writeFileSync(path.join(dir, 'data.jsonl'), JSON.stringify(line) + '\n');
    const ds = await loadUserJsonl(path.join(dir, 'data.jsonl'), { imageSize: 8 });
    assert.is(ds.samples.length, 1);
    const [a, b] = ds.samples[0].images.map((id: string) => ds.images.get(id)!);
    assert.is(a.length, 3 * 8 * 8);
    // PNG: exact colours away from the seam
    assert.ok(Math.abs(a[0] - 1) < 0.02 && a[64] < 0.02 && a[128] < 0.02, 'left pixel is red');
    assert.ok(a[7] < 0.02 && a[64 + 7] < 0.02 && Math.abs(a[128 + 7] - 1) < 0.02, 'right pixel is blue');
    // JPEG: green within compression error
    assert.ok(b.slice(64, 128).every((v: number) => Math.abs(v - 200 / 255) < 0.05), 'green channel');
    assert.ok(b.slice(0, 64).every((v: number) => v < 0.05), 'red channel near 0');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
