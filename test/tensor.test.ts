// Tensor core: conversions, disposal, scopes, devices, error codes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { keep, runtime, scope, Tensor, ValrError } from '../lib/index';
import { assertBitsEqual, assertThrowsCode, rng } from './helpers/check';

const test = suite('Tensor');

test('round-trips float32 and int32 data through native memory into JS-owned arrays', () => {
  const f = rng(1).floats(24);
  const t = Tensor.fromArray(f, [2, 3, 4]);
  assert.equal([...t.shape], [2, 3, 4]);
  assert.is(t.dtype, 'float32');
  assert.is(t.device, 'cpu');
  const back = t.toArray() as Float32Array;
  assertBitsEqual(back, f, 'float32');
  back[0] = 42; // a copy: the tensor is unchanged
  assert.is.not((t.toArray() as Float32Array)[0], 42);
  const i = Tensor.fromArray(Int32Array.of(1, -2, 3));
  assert.is(i.dtype, 'int32');
  assert.equal([...(i.toArray() as Int32Array)], [1, -2, 3]);
  t.dispose();
  i.dispose();
});

test('subarray views are copied from their own offset', () => {
  const f = Float32Array.from({ length: 10 }, (_, k) => k);
  const t = Tensor.fromArray(f.subarray(3, 7));
  assert.equal([...(t.toArray() as Float32Array)], [3, 4, 5, 6]);
  t.dispose();
});

test('empty, full, zeros, write, reshape and to(cpu)', () => {
  const t = Tensor.full([3, 2], 1.5);
  assert.ok((t.toArray() as Float32Array).every((v) => v === 1.5));
  t.write(Float32Array.of(1, 2, 3, 4, 5, 6));
  const r = t.reshape([2, 3]);
  assert.equal([...r.shape], [2, 3]);
  assert.equal([...(r.toArray() as Float32Array)], [1, 2, 3, 4, 5, 6]);
  const c = t.to('cpu');
  t.dispose();
  assert.equal([...(c.toArray() as Float32Array)], [1, 2, 3, 4, 5, 6], 'copy survives the original');
  assert.equal([...(r.toArray() as Float32Array)], [1, 2, 3, 4, 5, 6], 'a reshape shares storage and keeps it alive');
  assertThrowsCode(() => c.reshape([4]), 'ERR_VALR_SHAPE', /cannot reshape \[3, 2\]/);
  assertThrowsCode(() => c.write(new Float32Array(5)), 'ERR_VALR_SHAPE', /6 elements/);
  assertThrowsCode(() => c.write(new Int32Array(6)), 'ERR_VALR_DTYPE', /Float32Array/);
  const e = Tensor.empty([0, 5]);
  assert.is(e.size, 0);
  assert.is(e.toArray().length, 0);
  for (const x of [r, c, e]) x.dispose();
});

test('dispose is idempotent and later use fails with ERR_VALR_DISPOSED', () => {
  const t = Tensor.zeros([4]);
  t.dispose();
  t.dispose();
  assert.ok(t.isDisposed);
  assertThrowsCode(() => t.toArray(), 'ERR_VALR_DISPOSED', /\[4\] was disposed/);
  assertThrowsCode(() => t.to('cpu'), 'ERR_VALR_DISPOSED');
});

test('Symbol.dispose frees the tensor (for `using`)', () => {
  const t = Tensor.zeros([2]);
  (t as unknown as { [Symbol.dispose](): void })[Symbol.dispose]();
  assert.ok(t.isDisposed);
});

test('scope frees what was made inside except what is returned, nested scopes hand results up', () => {
  let inner: Tensor | undefined, temp: Tensor | undefined, kept: Tensor | undefined;
  const result = scope(() => {
    temp = Tensor.zeros([2]);
    kept = keep(Tensor.zeros([2]));
    const r = scope(() => {
      inner = Tensor.zeros([3]);
      return { out: [inner] };
    });
    return r.out[0];
  });
  assert.ok(temp!.isDisposed, 'temporary freed');
  assert.not.ok(kept!.isDisposed, 'kept survives');
  assert.is(result, inner);
  assert.not.ok(result.isDisposed, 'returned tensor survives both scopes');
  result.dispose();
  kept!.dispose();
});

test('scope frees everything when the function throws', () => {
  let t: Tensor | undefined;
  assert.throws(() =>
    scope(() => {
      t = Tensor.zeros([2]);
      throw new Error('boom');
    }),
  );
  assert.ok(t!.isDisposed);
});

test('devices: bad names, CUDA without a GPU, foreign pointers', () => {
  assertThrowsCode(() => Tensor.zeros([2], { device: 'gpu' as never }), 'ERR_VALR_DEVICE', /'gpu' is not 'cpu', 'cuda' or 'cuda:N'/);
  if (runtime.defaultDevice() === 'cpu') {
    // No usable CUDA device here: CUDA requests fail with a clear error, never a crash.
    assert.throws(() => Tensor.zeros([2], { device: 'cuda' }), (e: ValrError) => ['ERR_VALR_DEVICE', 'ERR_VALR_CUDA'].includes(e.code));
    assert.throws(
      () => Tensor.fromDevicePointer(0x1000n, [4], { device: 'cuda', owner: {} }),
      (e: ValrError) => ['ERR_VALR_DEVICE', 'ERR_VALR_CUDA'].includes(e.code),
    );
  }
  assertThrowsCode(() => Tensor.fromDevicePointer(0x1000n, [4], { device: 'cpu', owner: {} }), 'ERR_VALR_DEVICE', /must be a CUDA device/);
  assertThrowsCode(() => Tensor.fromDevicePointer(0x1000n, [4], { device: 'cuda', owner: undefined }), 'ERR_VALR_ARGUMENT', /owner/);
  const t = Tensor.zeros([1]);
  assert.is(t.stream(), null, 'CPU tensors have no stream');
  assert.is(typeof t.devicePointer(), 'bigint');
  t.dispose();
});

test('huge and invalid shapes are errors, not crashes', () => {
  assertThrowsCode(() => Tensor.empty([2 ** 30, 2 ** 30]), 'ERR_VALR_RANGE', /limit is 2\^48/);
  assertThrowsCode(() => Tensor.empty([1.5]), 'ERR_VALR_SHAPE');
  assertThrowsCode(() => Tensor.empty([NaN]), 'ERR_VALR_SHAPE');
  assertThrowsCode(() => Tensor.empty([1, 2, 3, 4, 5, 6, 7, 8, 9]), 'ERR_VALR_SHAPE', /rank 9/);
  assertThrowsCode(() => Tensor.empty([2 ** 40, 2 ** 6]), 'ERR_VALR_OOM');
  assertThrowsCode(() => Tensor.empty([2], { dtype: 'bfloat16' as never }), 'ERR_VALR_DTYPE', /reserved/);
  assertThrowsCode(() => Tensor.fromArray(new Float64Array(3) as never), 'ERR_VALR_DTYPE');
});

test('large host blocks are cached for reuse and counted', () => {
  const before = runtime.hostMemoryStats();
  const a = Tensor.empty([1 << 20]); // 4 MiB
  const mid = runtime.hostMemoryStats();
  assert.ok(mid.inUse >= before.inUse + (4 << 20), 'in use grows');
  assert.ok(mid.peakInUse >= mid.inUse);
  a.dispose();
  assert.ok(runtime.hostMemoryStats().cached >= 4 << 20, 'freed block is cached');
  const b = Tensor.full([1 << 20], 3);
  assert.is(runtime.hostMemoryStats().cacheHits, mid.cacheHits + 1, 'same size comes from the cache');
  assert.ok((b.toArray() as Float32Array).every((v) => v === 3));
  b.dispose();
  runtime.hostEmptyCache();
  assert.is(runtime.hostMemoryStats().cached, 0);
});

test('the thread pool can be resized and reports its size', () => {
  const n = runtime.numThreads();
  assert.ok(n >= 1);
  runtime.setNumThreads(1);
  assert.is(runtime.numThreads(), 1);
  runtime.setNumThreads(n);
  assert.is(runtime.numThreads(), n);
});

test.run();
