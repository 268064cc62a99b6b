// Comparison helpers (uvu has no approximate equality).
import * as assert from 'uvu/assert';

/** |a - b| <= atol + rtol * |b| everywhere; reports the first mismatches. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what = ''): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = Number.isFinite(a) && Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      count++;
      if (bad.length < 5) bad.push(`[${i}] got ${a}, expected ${e}`);
    }
  }
  if (count) assert.unreachable(`${what}: ${count}/${actual.length} elements differ: ${bad.join('; ')}`);
}

export function assertScalarClose(a: number, e: number, atol: number, rtol: number, what = ''): void {
  assert.ok(Number.isFinite(a) && Math.abs(a - e) <= atol + rtol * Math.abs(e), `${what}: got ${a}, expected ${e}`);
}

export function assertBitsEqual(a: Float32Array, b: Float32Array, what = ''): void {
  assert.is(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.unreachable(`${what}: bits differ at ${i}: ${a[i]} vs ${b[i]}`);
}

/** Expects fn to throw an Error with this code and a message matching `message`. */
export function assertThrowsCode(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    const err = e as Error & { code?: string };
    assert.ok(err instanceof Error, 'threw a non-Error');
    assert.is(err.code, code, `error code (message: ${err.message})`);
    if (message) assert.match(err.message, message);
    return;
  }
  assert.unreachable(`expected an error with code ${code}`);
}

/** Deterministic pseudo-random numbers (mulberry32) so failures reproduce. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)],
    normal: () => {
      const u = Math.max(next(), 1e-12), v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    floats(n: number, scale = 1): Float32Array {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = this.normal() * scale;
      return out;
    },
  };
}

export function maxAbs(xs: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]));
  return m;
}
