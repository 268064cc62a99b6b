// Users' own chain-of-thought data.
//
// Format: a JSONL file, one sample per line (blank lines are skipped):
//   {
//     "id": "kitchen-01",                          unique, non-empty string
//     "images": ["views/k01_a.jpg", "views/k01_b.png"],   PNG or JPEG files, paths relative
//                                                  to the JSONL file's directory (absolute
//                                                  paths are allowed too); 1 or more
//     "question": "Is the mug left of the kettle?",
//     "steps": [ { "text": "In the first view the mug ...", "view": 0 },
//                { "text": "The second view shows ...", "view": 1 } ],   view: index into
//                                                  "images"; steps may be empty
//     "answer": "yes",
//     "family": "direction"                        optional free-form tag (default "user")
//   }
// Other fields are ignored. Every problem is a ValrError naming the file and line.
//
// Images are decoded with `sharp` (an optional dependency, loaded on first use: npm install
// sharp), EXIF-rotated, alpha flattened onto white, converted to sRGB 8-bit, then resized
// here to imageSize x imageSize RGB Float32 [3, S, S] in [0, 1] with an antialiased bilinear
// (triangle) filter: 'fill' stretches the whole image, 'crop' takes the central square first.
// A custom `decode` can replace sharp (tests use one).
import * as fs from 'fs';
import * as path from 'path';
import { ValrError } from '../errors';
import { parseJsonl } from './files';
import type { Step } from './questions';

export interface UserSample {
  id: string;
  /** Same as id (a user sample is its own scene). */
  sceneId: string;
  /** The optional "family" field, else 'user'. */
  family: string;
  /** Image ids: the image paths as written in the file, normalised ('/' separators); keys of UserDataset.images. */
  images: string[];
  question: string;
  steps: Step[];
  answer: string;
  numViews: number;
  /** 1-based line in the JSONL file. */
  line: number;
}

/** A decoded image: interleaved 8-bit pixels, row-major, `channels` per pixel (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA). */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: number;
}

export interface LoadUserOptions {
  /** Output side length S: every image becomes RGB Float32 [3, S, S]. */
  imageSize: number;
  /** 'fill' (default) stretches to the square; 'crop' resizes the central square. */
  fit?: 'fill' | 'crop';
  /** Replaces the sharp decoder: file path -> raw pixels. */
  decode?: (file: string) => Promise<RawImage> | RawImage;
  /** Images decoded at once (default 4). */
  concurrency?: number;
}

export interface UserDataset {
  file: string;
  imageSize: number;
  samples: UserSample[];
  /** Image id -> RGB Float32 [3, S, S] in [0, 1]. */
  images: Map<string, Float32Array>;
  /** The image of an id as a view: { rgb, width, height }. */
  view(id: string): { rgb: Float32Array; width: number; height: number };
}

const IMAGE_EXT = /\.(png|jpe?g)$/i;

function arg(message: string): never {
  throw new ValrError('ERR_VALR_ARGUMENT', message);
}

/** Validates the JSONL text (no file access); `source` names the file in errors. */
export function parseUserJsonl(text: string, source: string): UserSample[] {
  const ids = new Set<string>();
  return parseJsonl(text, source, (o, where, line) => {
    const bad = (m: string): never => arg(`${where}: ${m}`);
    if (typeof o.id !== 'string' || o.id.trim() === '') bad('"id" must be a non-empty string');
    const id = o.id as string;
    if (ids.has(id)) bad(`"id" ${JSON.stringify(id)} is used by an earlier line`);
    ids.add(id);
    if (!Array.isArray(o.images) || o.images.length === 0) bad('"images" must be a non-empty array of PNG/JPEG paths');
    const images = (o.images as unknown[]).map((p, i) => {
      if (typeof p !== 'string' || p.trim() === '') bad(`images[${i}] must be a non-empty path string`);
      if (!IMAGE_EXT.test(p as string)) bad(`images[${i}] ${JSON.stringify(p)} is not a .png, .jpg or .jpeg file`);
      return (p as string).replace(/\\/g, '/');
    });
    if (typeof o.question !== 'string' || o.question.trim() === '') bad('"question" must be a non-empty string');
    if (!Array.isArray(o.steps)) bad('"steps" must be an array of { "text", "view" } (it may be empty)');
    const steps = (o.steps as unknown[]).map((s, i) => {
      if (s === null || typeof s !== 'object' || Array.isArray(s)) bad(`steps[${i}] must be an object { "text", "view" }`);
      const st = s as Record<string, unknown>;
      if (typeof st.text !== 'string' || st.text.trim() === '') bad(`steps[${i}].text must be a non-empty string`);
      if (typeof st.view !== 'number' || !Number.isInteger(st.view) || st.view < 0 || st.view >= images.length) {
        bad(`steps[${i}].view must be an integer index into "images" (0..${images.length - 1}), got ${JSON.stringify(st.view)}`);
      }
      return { text: st.text as string, view: st.view as number };
    });
    if (typeof o.answer !== 'string' || o.answer.trim() === '') bad('"answer" must be a non-empty string');
    if (o.family !== undefined && typeof o.family !== 'string') bad('"family" must be a string when present');
    return {
      id,
      sceneId: id,
      family: (o.family as string | undefined) ?? 'user',
      images,
      question: o.question as string,
      steps,
      answer: o.answer as string,
      numViews: images.length,
      line,
    };
  });
}

type SharpLike = (input: string) => {
  rotate(): ReturnType<SharpLike>;
  flatten(o: { background: { r: number; g: number; b: number } }): ReturnType<SharpLike>;
  toColourspace(c: string): ReturnType<SharpLike>;
  raw(): ReturnType<SharpLike>;
  toBuffer(o: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
};

let sharpModule: SharpLike | undefined;

function loadSharp(): SharpLike {
  if (sharpModule) return sharpModule;
  try {
    // Lazy and optional: only users who bring their own images need it.
    sharpModule = require('sharp') as SharpLike;
  } catch (e) {
    throw new ValrError(
      'ERR_VALR_NO_BINARY',
      `decoding PNG/JPEG images needs the optional package 'sharp', which could not be loaded (${(e as Error).message.split('\n')[0]}). ` +
        `Install it with: npm install sharp (or pass options.decode).`,
    );
  }
  return sharpModule;
}

/** Decodes a PNG/JPEG with sharp: EXIF-rotated, alpha flattened onto white, sRGB, 8-bit. */
export async function decodeImageFile(file: string): Promise<RawImage> {
  const sharp = loadSharp();
  const { data, info } = await sharp(file).rotate().flatten({ background: { r: 255, g: 255, b: 255 } }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels };
}

/** Raw interleaved pixels -> RGB Float32 [3, H, W] in [0, 1]; grey is replicated, alpha composited onto white. */
export function rawToRgb(img: RawImage, what = 'image'): Float32Array {
  const { data, width: W, height: H, channels: C } = img;
  if (!Number.isInteger(W) || !Number.isInteger(H) || W < 1 || H < 1) arg(`${what}: invalid size ${W}x${H}`);
  if (![1, 2, 3, 4].includes(C)) arg(`${what}: ${C} channels (1-4 expected)`);
  if (!data || data.length !== W * H * C) arg(`${what}: ${data?.length} bytes of pixels, ${W}x${H}x${C} = ${W * H * C} expected`);
  const HW = W * H;
  const out = new Float32Array(3 * HW);
  for (let p = 0; p < HW; p++) {
    const q = p * C;
    let r: number, g: number, b: number, a = 1;
    if (C <= 2) {
      r = g = b = data[q] / 255;
      if (C === 2) a = data[q + 1] / 255;
    } else {
      r = data[q] / 255;
      g = data[q + 1] / 255;
      b = data[q + 2] / 255;
      if (C === 4) a = data[q + 3] / 255;
    }
    out[p] = r * a + (1 - a);
    out[HW + p] = g * a + (1 - a);
    out[2 * HW + p] = b * a + (1 - a);
  }
  return out;
}

/** Per output index: the source taps and normalised weights of a triangle filter (antialiased when shrinking). */
function filterTaps(inSize: number, inStart: number, inLen: number, outSize: number): { first: number[]; weights: number[][] } {
  const scale = inLen / outSize;
  const support = Math.max(1, scale); // triangle half-width in source pixels
  const first: number[] = [];
  const weights: number[][] = [];
  for (let o = 0; o < outSize; o++) {
    const centre = inStart + (o + 0.5) * scale; // continuous source coordinate
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(inSize - 1, Math.ceil(centre + support));
    const w: number[] = [];
    let sum = 0;
    for (let i = lo; i <= hi; i++) {
      const x = Math.max(0, 1 - Math.abs(i + 0.5 - centre) / support);
      w.push(x);
      sum += x;
    }
    if (sum === 0) {
      // degenerate: nearest pixel
      const n = Math.min(inSize - 1, Math.max(0, Math.floor(centre)));
      first.push(n);
      weights.push([1]);
      continue;
    }
    first.push(lo);
    weights.push(w.map((x) => x / sum));
  }
  return { first, weights };
}

/**
 * Resizes channel-major [C, H, W] to [C, outH, outW] with a separable triangle filter
 * (bilinear when enlarging, area-like when shrinking, as PIL's BILINEAR). `crop` selects a
 * source window { x, y, w, h } (default: the whole image).
 */
export function resizeImage(
  src: Float32Array,
  [C, H, W]: [number, number, number],
  [outH, outW]: [number, number],
  crop: { x: number; y: number; w: number; h: number } = { x: 0, y: 0, w: W, h: H },
): Float32Array {
  if (src.length !== C * H * W) arg(`resizeImage: ${src.length} values for [${C}, ${H}, ${W}]`);
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH < 1 || outW < 1) arg(`resizeImage: bad output size ${outH}x${outW}`);
  const tx = filterTaps(W, crop.x, crop.w, outW);
  const ty = filterTaps(H, crop.y, crop.h, outH);
  const tmp = new Float32Array(C * H * outW); // horizontal pass
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const row = (c * H + y) * W;
      for (let o = 0; o < outW; o++) {
        const f = tx.first[o], w = tx.weights[o];
        let acc = 0;
        for (let k = 0; k < w.length; k++) acc += w[k] * src[row + f + k];
        tmp[(c * H + y) * outW + o] = acc;
      }
    }
  }
  const out = new Float32Array(C * outH * outW);
  for (let c = 0; c < C; c++) {
    for (let o = 0; o < outH; o++) {
      const f = ty.first[o], w = ty.weights[o];
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        for (let k = 0; k < w.length; k++) acc += w[k] * tmp[(c * H + f + k) * outW + x];
        out[(c * outH + o) * outW + x] = Math.min(1, Math.max(0, acc));
      }
    }
  }
  return out;
}

/**
 * Loads a user JSONL file (format above): validates every line, checks that every image
 * file exists, decodes each distinct image once and resizes it to imageSize x imageSize.
 */
export async function loadUserJsonl(file: string, options: LoadUserOptions): Promise<UserDataset> {
  if (typeof file !== 'string' || file === '') arg('loadUserJsonl: file must be a non-empty path');
  if (options === null || typeof options !== 'object') arg('loadUserJsonl: options must be { imageSize }');
  const S = options.imageSize;
  if (!Number.isInteger(S) || S < 1 || S > 4096) arg(`loadUserJsonl: imageSize must be an integer in [1, 4096], got ${String(S)}`);
  const fit = options.fit ?? 'fill';
  if (fit !== 'fill' && fit !== 'crop') arg(`loadUserJsonl: fit must be 'fill' or 'crop', got ${JSON.stringify(fit)}`);
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) arg(`loadUserJsonl: concurrency must be a positive integer, got ${String(concurrency)}`);
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    return arg(`loadUserJsonl: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const samples = parseUserJsonl(text, file);
  const base = path.dirname(path.resolve(file));
  // first line that uses each image, for error messages
  const firstUse = new Map<string, { line: number; index: number }>();
  for (const s of samples) s.images.forEach((im, i) => firstUse.has(im) || firstUse.set(im, { line: s.line, index: i }));
  for (const [im, at] of firstUse) {
    const p = path.resolve(base, im);
    let ok = false;
    try {
      ok = (await fs.promises.stat(p)).isFile();
    } catch {
      ok = false;
    }
    if (!ok) arg(`${file}:${at.line}: images[${at.index}] ${JSON.stringify(im)} does not exist (looked for ${p})`);
  }

  const decode = options.decode ?? decodeImageFile;
  const images = new Map<string, Float32Array>();
  const todo = [...firstUse.keys()];
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const im = todo[next++];
      const at = firstUse.get(im)!;
      const where = `${file}:${at.line}: images[${at.index}] ${JSON.stringify(im)}`;
      let raw: RawImage;
      try {
        raw = await decode(path.resolve(base, im));
      } catch (e) {
        if (e instanceof ValrError && e.code === 'ERR_VALR_NO_BINARY') throw e;
        throw new ValrError('ERR_VALR_ARGUMENT', `${where}: cannot be decoded (${(e as Error).message})`);
      }
      const rgb = rawToRgb(raw, where);
      const { width: W, height: H } = raw;
      let crop = { x: 0, y: 0, w: W, h: H };
      if (fit === 'crop') {
        const side = Math.min(W, H);
        crop = { x: (W - side) / 2, y: (H - side) / 2, w: side, h: side };
      }
      images.set(im, resizeImage(rgb, [3, H, W], [S, S], crop));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));

  const view = (id: string) => {
    const rgb = images.get(id);
    if (!rgb) arg(`loadUserJsonl: unknown image id ${JSON.stringify(id)}`);
    return { rgb, width: S, height: S };
  };
  return { file, imageSize: S, samples, images, view };
}
