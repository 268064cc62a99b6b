// Choosing the next token from logits: greedy, or sampling with temperature,
// top-k and top-p (nucleus) from a seeded generator so runs reproduce.

export interface SamplingOptions {
  temperature?: number; // 0 = greedy
  topK?: number; // 0 = off
  topP?: number; // 1 = off
}

export class SeededRandom {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** Picks a token from logits (entries set to -Infinity are never chosen). */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rand: SeededRandom): number {
  const temperature = o.temperature ?? 0;
  let best = -1;
  for (let i = 0; i < logits.length; i++) if (best < 0 || logits[i] > logits[best]) best = i;
  if (temperature <= 0 || !Number.isFinite(logits[best])) return best;
  let ids = [...logits.keys()].filter((i) => Number.isFinite(logits[i]));
  ids.sort((a, b) => logits[b] - logits[a]);
  if (o.topK && o.topK > 0) ids = ids.slice(0, o.topK);
  const mx = logits[ids[0]];
  let probs = ids.map((i) => Math.exp((logits[i] - mx) / temperature));
  let z = probs.reduce((a, b) => a + b, 0);
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0, keep = 0;
    while (keep < probs.length && acc < o.topP * z) acc += probs[keep++];
    ids = ids.slice(0, Math.max(keep, 1));
    probs = probs.slice(0, ids.length);
    z = probs.reduce((a, b) => a + b, 0);
  }
  let u = rand.next() * z;
  for (let k = 0; k < ids.length; k++) {
    u -= probs[k];
    if (u <= 0) return ids[k];
  }
  return ids[ids.length - 1];
}
