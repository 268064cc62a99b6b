// safetensors reader/writer: round trips, files written by Python's safetensors
// (test/fixtures/make_safetensors_fixtures.py), validation messages, a corruption fuzz,
// the atomic writer and sharded-checkpoint indexes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ValrError } from '../lib/errors';
import {
  parseSafetensors,
  readSafetensors,
  readSafetensorsSync,
  readSafetensorsHeader,
  readSafetensorsIndex,
  serializeSafetensors,
  toFloat32,
  toInt32,
  writeSafetensorsAtomic,
  type TensorRecord,
} from '../lib/io/safetensors';
import { assertThrowsCode, rng } from './helpers/check';

const FIX = path.join(__dirname, 'fixtures', 'safetensors');
const test = suite('safetensors');

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'valr-st-'));
}

/** Builds a file from a header object and a data buffer (header padded like the writer). */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const text = headerText ?? JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function rec(dtype: string, shape: number[], bytes: ArrayLike<number>): TensorRecord {
  return { dtype, shape, data: Uint8Array.from(bytes) };
}

test('round trip: values, dtypes, metadata, header padding, sorted layout, alignment', () => {
  const a = Float32Array.of(1, -2.5, 3e-40, Infinity, -0, NaN);
  const ids = Int32Array.of(-1, 0, 2147483647, -2147483648);
  // a view at an odd offset of a bigger buffer, to check the writer copies only the view
  const big = new Float32Array(10).map((_, i) => i);
  const view = big.subarray(3, 7);
  const bytes = serializeSafetensors(
    { zeta: { shape: [2, 3], data: a }, alpha: { dtype: 'I32', shape: [4], data: ids }, mid: { shape: [2, 2], data: view }, s: { shape: [], data: Float32Array.of(5) }, e: { shape: [0, 4], data: new Float32Array(0) } },
    { format: 'pt', 'note é': 'x"y' },
  );
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is(n % 8, 0, 'header padded to a multiple of 8');
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.ok(/ *$/.test(headerText));
  const { metadata, tensors } = parseSafetensors(bytes, 'mem');
  assert.equal(metadata, { format: 'pt', 'note é': 'x"y' });
  assert.equal([...tensors.keys()].sort(), ['alpha', 'e', 'mid', 's', 'zeta']);
  // sorted name order in the data buffer, back to back, 4-byte aligned in the file
  const order = [...tensors.entries()].sort((x, y) => x[1].data.byteOffset - y[1].data.byteOffset).map((x) => x[0]);
  assert.equal(order.filter((k) => k !== 'e'), ['alpha', 'mid', 's', 'zeta']);
  for (const t of tensors.values()) assert.is(t.data.byteOffset % 4, 0);
  const za = toFloat32(tensors.get('zeta')!, 'zeta');
  assert.equal(tensors.get('zeta')!.shape, [2, 3]);
  assert.is(tensors.get('zeta')!.dtype, 'F32');
  assert.equal(Array.from(za.subarray(0, 5)), [1, -2.5, Math.fround(3e-40), Infinity, -0]);
  assert.ok(Object.is(za[4], -0));
  assert.ok(Number.isNaN(za[5]));
  assert.is(tensors.get('alpha')!.dtype, 'I32');
  assert.equal(Array.from(toInt32(tensors.get('alpha')!)), Array.from(ids));
  assert.equal(Array.from(toFloat32(tensors.get('mid')!)), [3, 4, 5, 6]);
  assert.equal(tensors.get('s')!.shape, []);
  assert.equal(Array.from(toFloat32(tensors.get('s')!)), [5]);
  assert.equal(tensors.get('e')!.shape, [0, 4]);
  assert.is(toFloat32(tensors.get('e')!).length, 0);
  // views are zero-copy
  assert.is(tensors.get('zeta')!.data.buffer, bytes.buffer);
  // no metadata: no __metadata__ key at all
  const plain = serializeSafetensors({ x: { shape: [1], data: Float32Array.of(1) } });
  assert.equal(parseSafetensors(plain).metadata, {});
  assert.not.ok(new TextDecoder().decode(plain).includes('__metadata__'));
});

test("a tensor named '__proto__' is stored like any other name", () => {
  const bytes = serializeSafetensors({ ['__proto__']: { shape: [2], data: Float32Array.of(3, 4) } } as Record<string, { shape: number[]; data: Float32Array }>);
  const parsed = parseSafetensors(bytes, 'proto');
  assert.equal([...parsed.tensors.keys()], ['__proto__']);
  assert.equal(Array.from(toFloat32(parsed.tensors.get('__proto__')!)), [3, 4]);
});

test('serialize rejects bad input', () => {
  assertThrowsCode(() => serializeSafetensors({ x: { shape: [2], data: Float32Array.of(1) } }), 'ERR_VALR_ARGUMENT', /1 elements but shape \[2\] needs 2/);
  assertThrowsCode(() => serializeSafetensors({ x: { shape: [-1], data: Float32Array.of(1) } }), 'ERR_VALR_ARGUMENT', /shape/);
  assertThrowsCode(() => serializeSafetensors({ x: { dtype: 'I32', shape: [1], data: Float32Array.of(1) } }), 'ERR_VALR_ARGUMENT', /does not match/);
  assertThrowsCode(() => serializeSafetensors({ x: { shape: [1], data: [1] as unknown as Float32Array } }), 'ERR_VALR_ARGUMENT', /Float32Array or Int32Array/);
  assertThrowsCode(() => serializeSafetensors({ __metadata__: { shape: [1], data: Float32Array.of(1) } }), 'ERR_VALR_ARGUMENT', /__metadata__/);
  assertThrowsCode(() => serializeSafetensors({}, { a: 1 as unknown as string }), 'ERR_VALR_ARGUMENT', /not a string/);
});

test('reads F32 tensors written by Python safetensors', async () => {
  const f = await readSafetensors(path.join(FIX, 'f32.safetensors'));
  assert.equal(f.metadata, {});
  const a = f.tensors.get('a')!;
  assert.is(a.dtype, 'F32');
  assert.equal(a.shape, [2, 3]);
  assert.equal(Array.from(toFloat32(a)), [-1, -0.5, 0, 0.5, 1, 1.5]);
  assert.equal(Array.from(toFloat32(f.tensors.get('b')!)), [1, -2, 3.5, Math.fround(1e-3)]);
  assert.equal(f.tensors.get('scalar')!.shape, []);
  assert.equal(Array.from(toFloat32(f.tensors.get('scalar')!)), [7]);
  assert.equal(f.tensors.get('empty')!.shape, [0, 3]);
  assert.is(toFloat32(f.tensors.get('empty')!).length, 0);
  const s = readSafetensorsSync(path.join(FIX, 'f32.safetensors'));
  assert.equal(Array.from(toFloat32(s.tensors.get('a')!)), [-1, -0.5, 0, 0.5, 1, 1.5]);
});

test('F16 and BF16 widen exactly (subnormals, inf, nan), matching torch', async () => {
  const { tensors } = await readSafetensors(path.join(FIX, 'half.safetensors'));
  for (const [half, ref] of [['f16', 'f16_as_f32'], ['bf16', 'bf16_as_f32']]) {
    const got = toFloat32(tensors.get(half)!, half);
    const want = toFloat32(tensors.get(ref)!, ref);
    assert.is(tensors.get(half)!.dtype, half.toUpperCase());
    assert.is(got.length, 12);
    const gb = new Uint32Array(got.buffer), wb = new Uint32Array(want.buffer);
    for (let i = 0; i < got.length; i++) {
      if (Number.isNaN(want[i])) assert.ok(Number.isNaN(got[i]), `${half}[${i}] nan`);
      else assert.is(gb[i], wb[i], `${half}[${i}]: ${got[i]} vs ${want[i]}`);
    }
  }
  const f16 = toFloat32(tensors.get('f16')!);
  assert.equal(Array.from(f16.subarray(0, 11)), [1, -2.5, 65504, 2 ** -14, 2 ** -24, -3 * 2 ** -24, 1023 * 2 ** -24, 0, -0, Infinity, -Infinity]);
  assert.ok(Object.is(f16[8], -0));
  assert.ok(Number.isNaN(f16[11]));
  const bf = toFloat32(tensors.get('bf16')!);
  assert.equal(Array.from(bf.subarray(0, 11)), [1, -2.5, 3.3895313892515355e38, 2 ** -126, 2 ** -133, -(2 ** -130), 0.10009765625, 0, -0, Infinity, -Infinity]);
  assert.ok(Number.isNaN(bf[11]));
});

test('every float16 bit pattern widens to the value it encodes', () => {
  const data = new Uint8Array(65536 * 2);
  for (let h = 0; h < 65536; h++) {
    data[2 * h] = h & 0xff;
    data[2 * h + 1] = h >> 8;
  }
  const out = toFloat32({ dtype: 'F16', shape: [65536], data });
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
    const v = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    if (Number.isNaN(v)) assert.ok(Number.isNaN(out[h]));
    else if (!Object.is(out[h], v)) assert.unreachable(`f16 0x${h.toString(16)}: got ${out[h]}, expected ${v}`);
  }
});

test('__metadata__ and integer tensors from Python', async () => {
  const f = await readSafetensors(path.join(FIX, 'metadata.safetensors'));
  assert.equal(f.metadata, { format: 'pt', note: 'hello é' });
  assert.equal(Array.from(toFloat32(f.tensors.get('w')!)), [1, 2, 3, 4]);
  assert.equal(Array.from(toInt32(f.tensors.get('ids')!)), [1, -2, 2147483647]);
  assert.equal(Array.from(toInt32(f.tensors.get('ids64')!)), [-5, 9]);
  assertThrowsCode(() => toFloat32(f.tensors.get('ids')!, 'ids'), 'ERR_VALR_DTYPE', /ids.*I32/);
  const h = await readSafetensorsHeader(path.join(FIX, 'metadata.safetensors'));
  assert.equal(h.metadata, f.metadata);
  assert.equal(h.tensors.get('ids')!.shape, [3]);
  assert.is(h.tensors.get('ids')!.end - h.tensors.get('ids')!.begin, 12);
});

test('F64 rounds to nearest; unaligned views are copied; I64 range-checked', () => {
  const d = new Float64Array([0.1, 1 + 2 ** -30, 1e300, -1e-50, 2 ** -149 * 0.75]);
  const bytes = new Uint8Array(1 + d.byteLength);
  bytes.set(new Uint8Array(d.buffer), 1); // odd offset
  const out = toFloat32({ dtype: 'F64', shape: [5], data: bytes.subarray(1) });
  assert.equal(Array.from(out), Array.from(d, Math.fround));
  const f = Float32Array.of(1.5, -2);
  const fb = new Uint8Array(12);
  fb.set(new Uint8Array(f.buffer), 3);
  assert.equal(Array.from(toFloat32({ dtype: 'F32', shape: [2], data: fb.subarray(3, 11) })), [1.5, -2]);
  const big = new BigInt64Array([2n ** 40n]);
  assertThrowsCode(() => toInt32({ dtype: 'I64', shape: [1], data: new Uint8Array(big.buffer) }, 'n'), 'ERR_VALR_RANGE', /does not fit/);
  assertThrowsCode(() => toFloat32(rec('F32', [2], [0, 0, 0, 0]), 'short'), 'ERR_VALR_ARGUMENT', /4 bytes but F32 \[2\] needs 8/);
  assertThrowsCode(() => toFloat32(rec('U8', [1], [0])), 'ERR_VALR_DTYPE');
});

test('corrupt files: clear messages naming file and tensor', () => {
  const d16 = new Uint8Array(16);
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /model\.safetensors: file is 5 bytes, too short/],
    [rawFile({}).subarray(0, 9), /header length 2 runs past the end/],
    [(() => { const b = rawFile({}); new DataView(b.buffer).setUint32(4, 1, true); return b; })(), /exceeds the 100000000-byte limit/],
    [rawFile(null, undefined, '{"a": '), /not valid JSON/],
    [rawFile([1, 2]), /not an object/],
    [rawFile(null, undefined, '"x"'), /not an object/],
    [rawFile({ x: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, d16), /model\.safetensors: tensor 'x' data_offsets \[0, 12\] hold 12 bytes but F32 \[2, 2\] needs 16/],
    [rawFile({ x: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, d16), /tensor 'x' has unknown dtype "F33"/],
    [rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4], extra: 1 } }, d16), /tensor 'x' has unknown field 'extra'/],
    [rawFile({ x: { dtype: 'F32', data_offsets: [0, 4] } }, d16), /tensor 'x' is missing field 'shape'/],
    [rawFile({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, d16), /tensor 'x' shape \[-1\] is not an array of non-negative integers/],
    [rawFile({ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, d16), /shape/],
    [rawFile({ x: { dtype: 'F32', shape: '1', data_offsets: [0, 4] } }, d16), /shape/],
    [rawFile({ x: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, d16), /too large/],
    [rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] } }, d16), /data_offsets \[0,4,8\] is not \[begin, end\]/],
    [rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, d16), /begin > end/],
    [rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [16, 20] } }, d16), /\[16, 20\] run past the end of the 16-byte data buffer/],
    [rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, d16), /tensor 'y' data_offsets \[4, 12\] overlap tensor 'x' \[0, 8\]/],
    [rawFile({ x: null }, d16), /tensor 'x' entry is not an object/],
    [rawFile({ __metadata__: { a: 1 } }, d16), /__metadata__ value for 'a' is not a string/],
    [rawFile({ __metadata__: [] }, d16), /__metadata__ is not an object/],
    [(() => { const b = rawFile(null, undefined, '{"\u00e9": 1}'); b[9] = 0xff; return b; })(), /not valid UTF-8/],
  ];
  for (const [bytes, msg] of cases) assertThrowsCode(() => parseSafetensors(bytes, 'model.safetensors'), 'ERR_VALR_ARGUMENT', msg);
  // u64 header length far beyond anything
  const huge = rawFile({});
  new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
  assertThrowsCode(() => parseSafetensors(huge, 'h'), 'ERR_VALR_ARGUMENT', /9223372036854775808 exceeds/);
  // zero-size tensors may share an offset; gaps between tensors are allowed
  const ok = parseSafetensors(rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 4] }, b: { dtype: 'BF16', shape: [0, 5], data_offsets: [4, 4] }, c: { dtype: 'U8', shape: [2], data_offsets: [8, 10] } }, d16));
  assert.is(ok.tensors.size, 3);
  // a "__proto__" key is data, not a prototype
  const proto = parseSafetensors(rawFile(null, undefined, '{"__metadata__": {"__proto__": "x"}}'));
  assert.is(Object.getPrototypeOf(proto.metadata), Object.prototype);
  assert.is(Object.getOwnPropertyDescriptor(proto.metadata, '__proto__')?.value, 'x');
  assertThrowsCode(() => parseSafetensors('abc' as unknown as Uint8Array), 'ERR_VALR_ARGUMENT');
});

test('fuzz: corrupted files parse or throw ERR_VALR_ARGUMENT, never anything else', () => {
  const r = rng(7);
  const bases = [
    fs.readFileSync(path.join(FIX, 'metadata.safetensors')),
    fs.readFileSync(path.join(FIX, 'half.safetensors')),
    serializeSafetensors({ a: { shape: [2, 3], data: new Float32Array(6).fill(1.5) }, b: { shape: [3], data: Int32Array.of(1, 2, 3) } }, { k: 'v' }),
  ].map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  const values: unknown[] = [
    null, true, 0, -1, 1, 3, 4, 7, 1.5, 1e300, -0, 2 ** 53, 2 ** 64, 'F32', 'BF16', 'I64', 'F99', '', [], [0], [1], [2, 3], [-1, 2],
    [0, 0], [0, 4], [0, 24], [24, 0], [0, 1e12], [2 ** 60, 2 ** 60], ['0', '4'], [0, 4, 8], [[0], [4]], {}, { a: 'b' }, { a: 1 }, 'x'.repeat(300),
  ];
  const mutations: ((b: Uint8Array) => Uint8Array)[] = [
    (b) => b.slice(0, r.int(0, b.length - 1)), // truncate
    (b) => {
      // overwrite bytes in the header
      const c = b.slice();
      const n = new DataView(c.buffer).getUint32(0, true);
      for (let k = r.int(1, 4); k > 0; k--) c[r.int(8, Math.min(c.length, 8 + n) - 1)] = r.int(0, 255);
      return c;
    },
    (b) => {
      // flip a bit anywhere (including the length prefix)
      const c = b.slice();
      c[r.int(0, c.length - 1)] ^= 1 << r.int(0, 7);
      return c;
    },
    (b) => {
      // change the header length
      const c = b.slice();
      const dv = new DataView(c.buffer);
      const n = dv.getUint32(0, true);
      const which = r.int(0, 3);
      if (which === 0) dv.setUint32(0, Math.max(0, n + r.int(-16, 16)), true);
      else if (which === 1) dv.setUint32(0, r.int(0, 2 ** 32 - 1), true);
      else if (which === 2) dv.setUint32(4, r.int(1, 2 ** 32 - 1), true);
      else dv.setUint32(0, c.length - 8 + r.int(-2, 2), true);
      return c;
    },
    (b) => {
      // structured: rewrite one field of the JSON header with a random value
      const dv = new DataView(b.buffer, b.byteOffset);
      const n = dv.getUint32(0, true);
      const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, Record<string, unknown>>;
      const names = Object.keys(header);
      const name = r.pick(names);
      const entry = header[name];
      const which = r.int(0, 6);
      if (which === 0) header[name] = r.pick(values) as Record<string, unknown>;
      else if (which === 1 && entry && typeof entry === 'object') entry[r.pick(['dtype', 'shape', 'data_offsets', '__x', 'a'])] = r.pick(values);
      else if (which === 2 && entry && typeof entry === 'object') delete entry[r.pick(['dtype', 'shape', 'data_offsets'])];
      else if (which === 3 && Array.isArray(entry?.data_offsets)) {
        const o = entry.data_offsets as number[];
        o[r.int(0, 1)] += r.pick([-8, -4, -1, 1, 2, 4, 8, 1000, 2 ** 31]);
      } else if (which === 4 && Array.isArray(entry?.shape)) {
        const s = entry.shape as number[];
        if (s.length) s[r.int(0, s.length - 1)] = r.pick([0, 1, 2, 1e9, -1, 0.5, 2 ** 60]);
        else s.push(r.int(0, 3));
      } else if (which === 5) header[`n${r.int(0, 9)}`] = { dtype: r.pick(['F32', 'F16', 'I8']), shape: [r.int(0, 4)], data_offsets: [r.int(0, 40), r.int(0, 40)] };
      const data = b.subarray(8 + n);
      const cut = which === 6 ? data.subarray(0, r.int(0, data.length)) : data;
      return rawFile(header, cut);
    },
    (b) => {
      // insert or delete bytes inside the header without fixing the length
      const n = new DataView(b.buffer, b.byteOffset).getUint32(0, true);
      const at = r.int(8, 8 + n);
      if (r.next() < 0.5) return Uint8Array.from([...b.subarray(0, at), ...Array.from({ length: r.int(1, 5) }, () => r.pick([32, 123, 125, 34, 44, 48, 0])), ...b.subarray(at)]);
      return Uint8Array.from([...b.subarray(0, at), ...b.subarray(Math.min(b.length, at + r.int(1, 5)))]);
    },
    (b) => Uint8Array.from([...b, ...Array.from({ length: r.int(1, 9) }, () => r.int(0, 255))]), // trailing garbage
  ];
  let parsed = 0, rejected = 0;
  const t0 = Date.now();
  for (let iter = 0; iter < 4000; iter++) {
    let bytes = r.pick(bases);
    for (let k = r.int(1, 3); k > 0; k--) {
      try {
        bytes = r.pick(mutations)(bytes);
      } catch {
        break; // the structured mutation needs a parseable header; keep what we have
      }
    }
    let result;
    try {
      result = parseSafetensors(bytes, 'fuzz.safetensors');
    } catch (e) {
      if (!(e instanceof ValrError) || e.code !== 'ERR_VALR_ARGUMENT') {
        assert.unreachable(`iteration ${iter}: ${(e as Error)?.constructor?.name} ${(e as Error)?.message}`);
      }
      assert.match((e as Error).message, /^fuzz\.safetensors: /);
      rejected++;
      continue;
    }
    parsed++;
    for (const [name, t] of result.tensors) {
      assert.ok(t.data.byteOffset + t.data.byteLength <= bytes.byteOffset + bytes.byteLength);
      try {
        const v = toFloat32(t, name);
        assert.ok(v.length <= t.data.byteLength);
      } catch (e) {
        assert.ok(e instanceof ValrError && e.code === 'ERR_VALR_DTYPE', `toFloat32 of a parsed tensor: ${(e as Error).message}`);
      }
    }
  }
  assert.ok(parsed > 100 && rejected > 1000, `parsed ${parsed}, rejected ${rejected}`);
  assert.ok(Date.now() - t0 < 20000, 'fuzz took too long');
});

test('atomic write replaces an existing file and leaves no temp file', async () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'ckpt.safetensors');
    fs.writeFileSync(file, 'old contents');
    await writeSafetensorsAtomic(file, { w: { shape: [2], data: Float32Array.of(1, 2) } }, { step: '1' });
    assert.equal(fs.readdirSync(dir), ['ckpt.safetensors']);
    let f = readSafetensorsSync(file);
    assert.equal(f.metadata, { step: '1' });
    assert.equal(Array.from(toFloat32(f.tensors.get('w')!)), [1, 2]);
    await writeSafetensorsAtomic(file, { w: { shape: [3], data: Float32Array.of(4, 5, 6) }, i: { shape: [1], data: Int32Array.of(9) } });
    assert.equal(fs.readdirSync(dir), ['ckpt.safetensors']);
    f = await readSafetensors(file);
    assert.equal(f.metadata, {});
    assert.equal(Array.from(toFloat32(f.tensors.get('w')!)), [4, 5, 6]);
    assert.equal(Array.from(toInt32(f.tensors.get('i')!)), [9]);
    // concurrent writers to the same path: each uses its own temp file, the last rename wins
    await Promise.all([1, 2, 3, 4].map((k) => writeSafetensorsAtomic(file, { w: { shape: [1], data: Float32Array.of(k) } })));
    assert.equal(fs.readdirSync(dir), ['ckpt.safetensors']);
    assert.ok([1, 2, 3, 4].includes(toFloat32(readSafetensorsSync(file).tensors.get('w')!)[0]));
    // a bad tensor fails before anything is written
    await writeSafetensorsAtomic(file, { w: { shape: [5], data: Float32Array.of(1) } }).then(
      () => assert.unreachable('should throw'),
      (e) => assert.is(e.code, 'ERR_VALR_ARGUMENT'),
    );
    // a missing directory fails and leaves nothing behind
    await writeSafetensorsAtomic(path.join(dir, 'nope', 'x.safetensors'), { w: { shape: [1], data: Float32Array.of(1) } }).then(
      () => assert.unreachable('should throw'),
      (e) => assert.is(e.code, 'ENOENT'),
    );
    // the target is a directory: rename fails, the temp file is removed
    fs.mkdirSync(path.join(dir, 'isdir'));
    fs.writeFileSync(path.join(dir, 'isdir', 'f'), '');
    await writeSafetensorsAtomic(path.join(dir, 'isdir'), { w: { shape: [1], data: Float32Array.of(1) } }).then(
      () => assert.unreachable('should throw'),
      (e) => assert.ok(e instanceof Error),
    );
    assert.equal(fs.readdirSync(dir).sort(), ['ckpt.safetensors', 'isdir']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('readSafetensorsIndex: sharded index and single-file checkpoints', async () => {
  const dir = tmpDir();
  try {
    const rel = path.relative(process.cwd(), dir);
    await assertRejects(readSafetensorsIndex(dir), /neither model\.safetensors\.index\.json nor model\.safetensors/);
    fs.copyFileSync(path.join(FIX, 'metadata.safetensors'), path.join(dir, 'model.safetensors'));
    const single = await readSafetensorsIndex(dir);
    assert.equal([...single.keys()].sort(), ['ids', 'ids64', 'w']);
    assert.is(single.get('w'), path.join(dir, 'model.safetensors'));
    // absolute paths even for a relative dir
    assert.is((await readSafetensorsIndex(rel)).get('w'), path.join(dir, 'model.safetensors'));
    fs.writeFileSync(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 28 }, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' } }),
    );
    const sharded = await readSafetensorsIndex(dir);
    assert.equal(Object.fromEntries(sharded), {
      'a.weight': path.join(dir, 'model-00001-of-00002.safetensors'),
      'b.weight': path.join(dir, 'model-00002-of-00002.safetensors'),
    });
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../evil.safetensors' } }));
    await assertRejects(readSafetensorsIndex(dir), /not a file name inside the checkpoint directory/);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map": [');
    await assertRejects(readSafetensorsIndex(dir), /not valid JSON/);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weights": {}}');
    await assertRejects(readSafetensorsIndex(dir), /no "weight_map"/);
    // a corrupt single file is reported through its header
    fs.rmSync(path.join(dir, 'model.safetensors.index.json'));
    fs.writeFileSync(path.join(dir, 'model.safetensors'), rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)));
    await assertRejects(readSafetensorsIndex(dir), /model\.safetensors: tensor 'x' data_offsets \[0, 8\] hold 8 bytes but F32 \[1\] needs 4/);
    fs.writeFileSync(path.join(dir, 'model.safetensors'), new Uint8Array(3));
    await assertRejects(readSafetensorsIndex(dir), /too short/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('reads the Hugging Face Qwen2 fixtures (test/fixtures/qwen2) consistently', async () => {
  const root = path.join(__dirname, 'fixtures', 'qwen2');
  const cases = fs.readdirSync(root).filter((d) => fs.statSync(path.join(root, d)).isDirectory()).sort();
  assert.equal(cases, ['gqa_tied_bias', 'gqa_untied_pad', 'mha_untied', 'no_bias']);
  for (const c of cases) {
    const config = JSON.parse(fs.readFileSync(path.join(root, c, 'config.json'), 'utf8'));
    const index = await readSafetensorsIndex(path.join(root, c));
    const model = await readSafetensors(path.join(root, c, 'model.safetensors'));
    const ref = await readSafetensors(path.join(root, c, 'reference.safetensors'));
    assert.is(ref.metadata.case, c);
    assert.equal([...index.keys()].sort(), [...model.tensors.keys()].sort());
    assert.is(model.tensors.has('lm_head.weight'), !config.tie_word_embeddings, `${c}: lm_head present iff untied`);
    for (const [name, t] of model.tensors) {
      assert.is(t.dtype, 'F32');
      for (const prefix of ['grad.', 'params_after_adamw.']) {
        const r = ref.tensors.get(prefix + name);
        assert.ok(r, `${c}: ${prefix}${name}`);
        assert.equal(r!.shape, t.shape);
      }
    }
    const names = [...ref.tensors.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
    assert.equal(names.sort(), [...model.tensors.keys()].sort());
    const [B, T] = ref.tensors.get('input_ids')!.shape;
    const V = config.vocab_size;
    const ids = toInt32(ref.tensors.get('input_ids')!), mask = toInt32(ref.tensors.get('attention_mask')!), labels = toInt32(ref.tensors.get('labels')!);
    for (let i = 0; i < B * T; i++) if (!mask[i]) assert.is(labels[i], -100);
    assert.ok(ids.every((v) => v >= 0 && v < V));
    assert.equal(ref.tensors.get('logits')!.shape, [B, T, V]);
    for (let l = 0; l <= config.num_hidden_layers; l++) assert.equal(ref.tensors.get(`hidden_states.${l}`)!.shape, [B, T, config.hidden_size]);
    // the stored loss is the shifted cross-entropy of the stored logits
    const logits = toFloat32(ref.tensors.get('logits')!);
    let sum = 0, count = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t + 1 < T; t++) {
        const y = labels[b * T + t + 1];
        if (y === -100) continue;
        const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
        let m = -Infinity;
        for (const v of row) m = Math.max(m, v);
        let z = 0;
        for (const v of row) z += Math.exp(v - m);
        sum += m + Math.log(z) - row[y];
        count++;
      }
    }
    const loss = toFloat32(ref.tensors.get('loss')!)[0];
    assert.ok(Math.abs(sum / count - loss) < 1e-5, `${c}: loss ${loss} vs ${sum / count}`);
    const adamw = toFloat32(ref.tensors.get('adamw_losses')!);
    assert.is(adamw[0], loss);
    assert.ok(adamw[2] < adamw[1] && adamw[1] < adamw[0], `${c}: AdamW lowers the loss`);
  }
});

async function assertRejects(p: Promise<unknown>, msg: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ValrError, `not a ValrError: ${(e as Error).message}`);
    assert.is(e.code, 'ERR_VALR_ARGUMENT');
    assert.match(e.message, msg);
    return;
  }
  assert.unreachable('expected a rejection');
}

test.run();
