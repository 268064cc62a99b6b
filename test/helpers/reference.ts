// Plain float64 reference implementations of the alignment kernels, written
// straight from the definitions (PyTorch's formulas), independent of the native code.

export type Arr = ArrayLike<number>;

export function tapGatherRef(hidden: Arr, D: number, rows: Arr): Float64Array {
  const out = new Float64Array(rows.length * D);
  for (let i = 0; i < rows.length; i++) for (let d = 0; d < D; d++) out[i * D + d] = hidden[rows[i] * D + d];
  return out;
}

export function tapScatterRef(grad: Arr, D: number, rows: Arr, numRows: number): Float64Array {
  const out = new Float64Array(numRows * D);
  for (let i = 0; i < rows.length; i++) for (let d = 0; d < D; d++) out[rows[i] * D + d] += grad[i * D + d];
  return out;
}

// PyTorch, align_corners=False: src = max((dst + 0.5) * in/out - 0.5, 0), neighbours floor(src) and +1 (clamped).
function axis(dst: number, inSize: number, outSize: number) {
  const src = Math.max((dst + 0.5) * (inSize / outSize) - 0.5, 0);
  const i0 = Math.min(Math.floor(src), inSize - 1);
  const i1 = Math.min(i0 + 1, inSize - 1);
  const l1 = Math.min(src - i0, 1);
  return { i0, i1, l0: 1 - l1, l1 };
}

/** The bilinear interpolation as a dense [Gh*Gw, gh*gw] matrix of weights. */
export function bilinearMatrix(gh: number, gw: number, Gh: number, Gw: number): Float64Array {
  const m = new Float64Array(Gh * Gw * gh * gw);
  for (let p = 0; p < Gh; p++) {
    const h = axis(p, gh, Gh);
    for (let q = 0; q < Gw; q++) {
      const w = axis(q, gw, Gw);
      const row = (p * Gw + q) * gh * gw;
      m[row + h.i0 * gw + w.i0] += h.l0 * w.l0;
      m[row + h.i0 * gw + w.i1] += h.l0 * w.l1;
      m[row + h.i1 * gw + w.i0] += h.l1 * w.l0;
      m[row + h.i1 * gw + w.i1] += h.l1 * w.l1;
    }
  }
  return m;
}

export function upsampleRef(x: Arr, S: number, gh: number, gw: number, D: number, Gh: number, Gw: number): Float64Array {
  const m = bilinearMatrix(gh, gw, Gh, Gw);
  const K = gh * gw, P = Gh * Gw;
  const y = new Float64Array(S * P * D);
  for (let s = 0; s < S; s++)
    for (let p = 0; p < P; p++)
      for (let k = 0; k < K; k++) {
        const w = m[p * K + k];
        if (w === 0) continue;
        for (let d = 0; d < D; d++) y[(s * P + p) * D + d] += w * x[(s * K + k) * D + d];
      }
  return y;
}

/** The transpose of upsampleRef: dx = M^T dy. */
export function upsampleBackwardRef(dy: Arr, S: number, gh: number, gw: number, D: number, Gh: number, Gw: number): Float64Array {
  const m = bilinearMatrix(gh, gw, Gh, Gw);
  const K = gh * gw, P = Gh * Gw;
  const dx = new Float64Array(S * K * D);
  for (let s = 0; s < S; s++)
    for (let p = 0; p < P; p++)
      for (let k = 0; k < K; k++) {
        const w = m[p * K + k];
        if (w === 0) continue;
        for (let d = 0; d < D; d++) dx[(s * K + k) * D + d] += w * dy[(s * P + p) * D + d];
      }
  return dx;
}

export interface TeacherRef {
  pred: Arr;
  target: Arr;
  P: number;
  D: number;
}

/** Loss per teacher, their mean, and gradScale * d(mean)/d(pred), as F.cosine_similarity(eps=1e-8). */
export function repaRef(teachers: TeacherRef[], S: number, weights: Arr | null, gradScale = 1) {
  const eps = 1e-8;
  const M = teachers.length;
  let W = 0;
  for (let s = 0; s < S; s++) W += weights ? weights[s] : 1;
  const perTeacher: number[] = [];
  const grads: Float64Array[] = [];
  for (const t of teachers) {
    const g = new Float64Array(S * t.P * t.D);
    let sum = 0;
    for (let s = 0; s < S; s++) {
      const w = weights ? weights[s] : 1;
      for (let p = 0; p < t.P; p++) {
        const o = (s * t.P + p) * t.D;
        let dot = 0, xx = 0, yy = 0;
        for (let d = 0; d < t.D; d++) {
          dot += t.pred[o + d] * t.target[o + d];
          xx += t.pred[o + d] ** 2;
          yy += t.target[o + d] ** 2;
        }
        const n1 = Math.sqrt(xx), n2 = Math.sqrt(yy);
        const c1 = Math.max(n1, eps), c2 = Math.max(n2, eps);
        const cos = dot / (c1 * c2);
        sum += w * cos;
        if (W === 0 || w === 0) continue;
        const coef = (-gradScale * w) / (M * W * t.P);
        for (let d = 0; d < t.D; d++) {
          const dcos = t.target[o + d] / (c1 * c2) - (n1 > 0 ? (cos * t.pred[o + d]) / (n1 * c1) : 0);
          g[o + d] = coef * dcos;
        }
      }
    }
    perTeacher.push(W === 0 ? 0 : -sum / (W * t.P));
    grads.push(g);
  }
  const total = perTeacher.reduce((a, b) => a + b, 0) / M;
  return { total, perTeacher, grads };
}
