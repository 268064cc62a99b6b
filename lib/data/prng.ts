// A small seeded pseudo-random generator for the synthetic data: sfc32 (Chris Doty-Humphrey's
// "small fast counter", 128-bit state, passes PractRand to 2^40+) seeded through a 32-bit
// hash. Everything in lib/data draws from this, never from Math.random, so the same seed
// gives the same scenes, questions and render bytes on every run.
import { ValrError } from '../errors';

/**
 * A 32-bit hash of a list of strings and numbers (FNV-1a over a typed encoding, then the
 * murmur3 finaliser). Used to derive independent seeds: hashSeed(seed, 'train', 12).
 */
export function hashSeed(...parts: readonly (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    const s = typeof p === 'number' ? `n${p}` : `s${p}`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0xff; // separator, so ('ab', 'c') and ('a', 'bc') differ
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Checks that `seed` is a safe integer; returns it. */
export function checkSeed(seed: unknown, what = 'seed'): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new ValrError('ERR_VALR_ARGUMENT', `${what} must be a safe integer, got ${String(seed)}`);
  }
  return seed;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed`: any safe integer (all of its bits matter). */
  constructor(seed: number) {
    checkSeed(seed);
    const h = hashSeed('rng', seed);
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = h;
    for (let i = 0; i < 16; i++) this.next();
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new ValrError('ERR_VALR_INTERNAL', 'Rng.pick: empty list');
    return items[Math.floor(this.float() * items.length)];
  }

  /** Fisher-Yates, in place; returns `items`. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /** An independent generator derived from this one's next output and a label. */
  fork(label: string | number): Rng {
    return new Rng(hashSeed(this.next(), label));
  }
}
