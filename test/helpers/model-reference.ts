// Plain float64 references of the transformer ops, straight from their definitions.
export type Arr = ArrayLike<number>;

export function matmulRef(a: Arr, b: Arr, M: number, N: number, K: number, transA: boolean, transB: boolean, bias?: Arr | null): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = bias ? bias[j] : 0;
      for (let k = 0; k < K; k++) s += (transA ? a[k * M + i] : a[i * K + k]) * (transB ? b[j * K + k] : b[k * N + j]);
      c[i * N + j] = s;
    }
  return c;
}

/** q [B,Tq,Hq,Dh], k/v [B,Tk,Hkv,Dh]; queries are the last Tq positions. */
export function attentionRef(
  q: Arr, k: Arr, v: Arr, B: number, Tq: number, Tk: number, Hq: number, Hkv: number, Dh: number,
  causal: boolean, keyMask: Arr | null, scale = 1 / Math.sqrt(Dh),
): Float64Array {
  const out = new Float64Array(B * Tq * Hq * Dh);
  const g = Hq / Hkv;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++)
      for (let i = 0; i < Tq; i++) {
        const kh = Math.floor(h / g), pos = Tk - Tq + i;
        const scores: number[] = [];
        const keys: number[] = [];
        for (let j = 0; j < Tk; j++) {
          if ((causal && j > pos) || (keyMask && !keyMask[b * Tk + j])) continue;
          let s = 0;
          for (let d = 0; d < Dh; d++) s += q[((b * Tq + i) * Hq + h) * Dh + d] * k[((b * Tk + j) * Hkv + kh) * Dh + d];
          scores.push(s * scale);
          keys.push(j);
        }
        if (!keys.length) continue;
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, c) => a + c, 0);
        for (let n = 0; n < keys.length; n++)
          for (let d = 0; d < Dh; d++) out[((b * Tq + i) * Hq + h) * Dh + d] += (e[n] / z) * v[((b * Tk + keys[n]) * Hkv + kh) * Dh + d];
      }
  return out;
}

export function rmsNormRef(x: Arr, w: Arr, rows: number, D: number, eps: number): Float64Array {
  const y = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[r * D + d] ** 2;
    const rs = 1 / Math.sqrt(ss / D + eps);
    for (let d = 0; d < D; d++) y[r * D + d] = x[r * D + d] * rs * w[d];
  }
  return y;
}

export function layerNormRef(x: Arr, w: Arr, b: Arr, rows: number, D: number, eps: number): Float64Array {
  const y = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    let mu = 0;
    for (let d = 0; d < D; d++) mu += x[r * D + d];
    mu /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[r * D + d] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / D + eps);
    for (let d = 0; d < D; d++) y[r * D + d] = (x[r * D + d] - mu) * rs * w[d] + b[d];
  }
  return y;
}

export function ropeRef(x: Arr, positions: Arr, rows: number, H: number, Dh: number, theta: number): Float64Array {
  const y = new Float64Array(rows * H * Dh);
  const half = Dh / 2;
  for (let r = 0; r < rows; r++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < half; i++) {
        const ang = positions[r] * Math.pow(theta, (-2 * i) / Dh);
        const o = (r * H + h) * Dh;
        y[o + i] = x[o + i] * Math.cos(ang) - x[o + i + half] * Math.sin(ang);
        y[o + i + half] = x[o + i + half] * Math.cos(ang) + x[o + i] * Math.sin(ang);
      }
  return y;
}

export function crossEntropyRef(logits: Arr, targets: Arr, N: number, V: number, ignore = -100) {
  let sum = 0, count = 0;
  const grad = new Float64Array(N * V);
  for (let r = 0; r < N; r++) {
    if (targets[r] === ignore) continue;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[r * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[r * V + v] - mx);
    sum += mx + Math.log(z) - logits[r * V + targets[r]];
    count++;
    for (let v = 0; v < V; v++) grad[r * V + v] = Math.exp(logits[r * V + v] - mx) / z - (v === targets[r] ? 1 : 0);
  }
  return { loss: sum / count, grad: grad.map((g) => g / count), count };
}
