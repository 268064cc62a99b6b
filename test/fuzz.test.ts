// Random wrong arguments at every native entry point and every NativeTensor method:
// each call must return or throw a JS Error with an ERR_VALR_* code, and the process
// must survive. The binding is enumerated, so a new entry is fuzzed automatically.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../lib/native';
import { rng } from './helpers/check';

const test = suite('fuzz native entries');
const b = native() as unknown as Record<string, unknown>;
const r = rng(2024);

function pool(): unknown[] {
  const live = native().fromArray(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3], 'cpu');
  const liveInt = native().fromArray(Int32Array.of(0, 1, 2), [3], 'cpu');
  const disposed = native().empty([2], 'float32', 'cpu');
  disposed.dispose();
  return [
    undefined, null, true, 0, 1, 2, 3, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, 1e300, -0,
    '', 'cpu', 'cuda', 'cuda:7', 'float32', 'int32', 'bfloat16', 'x'.repeat(1000),
    12n, -1n, 2n ** 70n, Symbol('s'), () => 1, {}, { length: 3 },
    [], [0], [3], [2, 3], [-1], [1.5], [NaN], [2 ** 50], [2 ** 25, 2 ** 25], ['a'], [{}], [1, 2, 3, 4, 5, 6, 7, 8, 9],
    [2, 2], [1, 2, 2, 3], [1, 2, 3],
    new Float32Array(0), new Float32Array(6), Float32Array.of(NaN, 1, -1), new Float64Array(6), new Uint8Array(6),
    new Int32Array(3), Int32Array.of(-5, 2 ** 31 - 1, 0), new ArrayBuffer(8),
    live, liveInt, disposed,
    [{ pred: new Float32Array(6), target: new Float32Array(6), shape: [1, 2, 3] }],
    [{ pred: live, target: live }], [{ pred: disposed, target: live }], [{ pred: 1 }], [null],
    [{ pred: new Float32Array(6), target: new Float32Array(6), shape: [1, 2, NaN] }],
    { get pred(): never { throw new Error('getter'); } },
  ];
}

// Valid-but-expensive argument ranges (thread count, copy size) are tested in their own tests.
const skipRandom = new Set(['setNumThreads', 'copyBandwidth', 'NativeTensor']);

function callAndCheck(name: string, fn: (...a: unknown[]) => unknown, self: unknown, args: unknown[]) {
  try {
    fn.apply(self, args);
  } catch (e) {
    const err = e as Error & { code?: string };
    const fromGetter = err instanceof Error && err.message === 'getter';
    assert.ok(err instanceof Error, `${name}: threw a non-Error`);
    assert.ok(fromGetter || /^ERR_VALR_/.test(String(err.code)), `${name}(${args.map(String).join(', ')}): code ${err.code}: ${err.message}`);
  }
}

test('every binding function survives random wrong arguments', () => {
  const values = pool();
  const entries = Object.entries(b).filter(([k, v]) => typeof v === 'function' && !skipRandom.has(k));
  assert.ok(entries.length >= 20, `found ${entries.length} entries`);
  let calls = 0;
  for (const [name, fn] of entries) {
    callAndCheck(name, fn as never, b, []);
    for (let i = 0; i < 300; i++) {
      const n = r.int(0, 6);
      callAndCheck(name, fn as never, b, Array.from({ length: n }, () => r.pick(values)));
      calls++;
    }
  }
  assert.ok(calls > 5000);
});

test('every NativeTensor method survives random arguments, on live and disposed tensors', () => {
  const values = pool();
  const proto = (b.NativeTensor as { prototype: object }).prototype;
  const methods = Object.getOwnPropertyNames(proto).filter((m) => m !== 'constructor');
  assert.ok(methods.length >= 12);
  for (const m of methods) {
    for (let i = 0; i < 100; i++) {
      const t = native().fromArray(Float32Array.of(1, 2, 3, 4), [2, 2], 'cpu');
      if (i % 3 === 0) t.dispose();
      const args = Array.from({ length: r.int(0, 3) }, () => r.pick(values));
      callAndCheck(`NativeTensor.${m}`, (proto as Record<string, never>)[m], t, args);
      // calling a method on a foreign `this` must not crash either
      if (i % 10 === 0) assert.throws(() => (proto as Record<string, (...a: unknown[]) => unknown>)[m].call({}, ...args));
    }
  }
});

test('constructor, thread count and copy-size arguments', () => {
  assert.throws(() => new (b.NativeTensor as new (...a: unknown[]) => unknown)(), /cannot be constructed from JS/);
  assert.throws(() => new (b.NativeTensor as new (...a: unknown[]) => unknown)({}), /cannot be constructed from JS/);
  for (const bad of [0, -1, 1.5, NaN, 1e12, '4', undefined]) {
    assert.throws(() => native().setNumThreads(bad as number), (e: { code: string }) => /^ERR_VALR_/.test(e.code));
    assert.throws(() => native().copyBandwidth(bad as number, 1), (e: { code: string }) => /^ERR_VALR_/.test(e.code));
  }
  assert.ok(native().copyBandwidth(1 << 20, 1) > 0);
});

test.run();
