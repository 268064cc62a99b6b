// The transformer's differentiable ops for the tape in function.ts. Each forward
// saves (borrowed) the tensors its backward reads and owns the statistics it made.
import * as m from '../ops/model';
import { addScaled, scaleInPlace, tapGather, tapScatter } from '../ops/alignment';
import { Tensor } from '../tensor';
import { apply, type DifferentiableOp, type Variable } from './function';

const rowsOf = (shape: readonly number[]) => shape.slice(0, -1).reduce((a, b) => a * b, 1);

// Sum of g [R, N] over its rows -> [N], as ones[1, R] @ g.
function sumRows(g2: Tensor): Tensor {
  const [R, N] = g2.shape;
  const ones = Tensor.full([R, 1], 1, { device: g2.device });
  const s = m.matmul(ones, g2, { transA: true });
  ones.dispose();
  const r = s.reshape([N]);
  s.dispose();
  return r;
}

// ---- linear: y = x W^T + b, x [..., Din], W [Dout, Din] -------------------------------
const linearOp: DifferentiableOp<void> = {
  name: 'linear',
  forward(ctx, [x, w, b]) {
    const din = x.shape[x.shape.length - 1];
    const x2 = x.reshape([rowsOf(x.shape), din]);
    const y2 = m.matmul(x2, w, { transB: true, bias: b ?? null });
    const y = y2.reshape([...x.shape.slice(0, -1), w.shape[0]]);
    ctx.own(x2, y2);
    ctx.save(x, w);
    return [y];
  },
  backward(ctx, [g]) {
    const [x, w] = ctx.saved;
    const [x2] = ctx.owned;
    const g2 = g!.reshape([rowsOf(g!.shape), w.shape[0]]);
    let dx: Tensor | null = null;
    if (ctx.needsInputGrad[0]) {
      const dx2 = m.matmul(g2, w); // [R, Dout] @ [Dout, Din]
      dx = dx2.reshape(x.shape);
      dx2.dispose(); // the reshape holds the storage; no second handle waits for scope end
    }
    const dw = ctx.needsInputGrad[1] ? m.matmul(g2, x2, { transA: true }) : null; // [Dout, R] @ [R, Din]
    const db = ctx.needsInputGrad.length > 2 && ctx.needsInputGrad[2] ? sumRows(g2) : null;
    g2.dispose();
    return [dx, dw, db];
  },
};

export function linear(x: Variable, weight: Variable, bias?: Variable | null): Variable {
  return apply(linearOp, bias ? [x, weight, bias] : [x, weight], undefined)[0];
}

// ---- embedding: rows of table [V, D] at ids -> [...idsShape, D] --------------------------
const embeddingOp: DifferentiableOp<{ ids: Int32Array; shape: readonly number[] }> = {
  name: 'embedding',
  forward(ctx, [table], p) {
    ctx.data.tableShape = table.shape;
    const flat = tapGather(table, p.ids);
    const out = flat.reshape([...p.shape, table.shape[1]]);
    ctx.own(flat);
    return [out];
  },
  backward(ctx, [g], p) {
    return [ctx.needsInputGrad[0] ? tapScatter(g!, p.ids, ctx.data.tableShape as number[]) : null];
  },
};

export function embedding(table: Variable, ids: Int32Array, shape: readonly number[]): Variable {
  return apply(embeddingOp, [table], { ids, shape })[0];
}

// ---- norms ---------------------------------------------------------------------------------
const rmsNormOp: DifferentiableOp<{ eps: number }> = {
  name: 'rmsNorm',
  forward(ctx, [x, w], p) {
    const { y, rstd } = m.rmsNorm(x, w, p.eps);
    ctx.save(x, w);
    ctx.own(rstd);
    return [y];
  },
  backward(ctx, [g]) {
    const [x, w] = ctx.saved;
    const [rstd] = ctx.owned;
    const dw = ctx.needsInputGrad[1] ? Tensor.zeros(w.shape, { device: w.device }) : null;
    const dx = m.rmsNormBackward(g!, x, w, rstd, dw);
    return [ctx.needsInputGrad[0] ? dx : (dx.dispose(), null), dw];
  },
};

export function rmsNorm(x: Variable, weight: Variable, eps: number): Variable {
  return apply(rmsNormOp, [x, weight], { eps })[0];
}

const layerNormOp: DifferentiableOp<{ eps: number }> = {
  name: 'layerNorm',
  forward(ctx, [x, w, b], p) {
    const { y, mean, rstd } = m.layerNorm(x, w, b ?? null, p.eps);
    ctx.save(x, w);
    ctx.own(mean, rstd);
    return [y];
  },
  backward(ctx, [g]) {
    const [x, w] = ctx.saved;
    const [mean, rstd] = ctx.owned;
    const dw = ctx.needsInputGrad[1] ? Tensor.zeros(w.shape, { device: w.device }) : null;
    const db = ctx.needsInputGrad.length > 2 && ctx.needsInputGrad[2] ? Tensor.zeros(w.shape, { device: w.device }) : null;
    const dx = m.layerNormBackward(g!, x, w, mean, rstd, dw, db);
    return [ctx.needsInputGrad[0] ? dx : (dx.dispose(), null), dw, db];
  },
};

export function layerNorm(x: Variable, weight: Variable, bias: Variable | null, eps: number): Variable {
  return apply(layerNormOp, bias ? [x, weight, bias] : [x, weight], { eps })[0];
}

// ---- rotary embedding, attention ---------------------------------------------------------
const ropeOp: DifferentiableOp<{ positions: Int32Array; theta: number }> = {
  name: 'rope',
  forward(_ctx, [x], p) {
    return [m.rope(x, p.positions, p.theta)];
  },
  backward(ctx, [g], p) {
    return [ctx.needsInputGrad[0] ? m.rope(g!, p.positions, p.theta, true) : null];
  },
};

/** x [B, T, H, Dh] rotated at positions [B*T]. */
export function rope(x: Variable, positions: Int32Array, theta: number): Variable {
  return apply(ropeOp, [x], { positions, theta })[0];
}

const attentionOp: DifferentiableOp<m.AttentionOptions> = {
  name: 'attention',
  forward(ctx, [q, k, v], p) {
    const { out, lse } = m.attention(q, k, v, p);
    ctx.save(q, k, v, out);
    ctx.own(lse);
    return [out];
  },
  backward(ctx, [g], p) {
    const [q, k, v, out] = ctx.saved;
    const { dq, dk, dv } = m.attentionBackward(g!, q, k, v, out, ctx.owned[0], p);
    return [dq, dk, dv];
  },
};

/** q [B, Tq, Hq, Dh] over k, v [B, Tk, Hkv, Dh]; the queries are the last Tq positions. */
export function attention(q: Variable, k: Variable, v: Variable, options: m.AttentionOptions = {}): Variable {
  return apply(attentionOp, [q, k, v], options)[0];
}

// ---- activations -----------------------------------------------------------------------------
const swigluOp: DifferentiableOp<void> = {
  name: 'swiglu',
  forward(ctx, [gate, up]) {
    ctx.save(gate, up);
    return [m.swiglu(gate, up)];
  },
  backward(ctx, [g]) {
    const { dgate, dup } = m.swigluBackward(g!, ctx.saved[0], ctx.saved[1]);
    return [dgate, dup];
  },
};

export function swiglu(gate: Variable, up: Variable): Variable {
  return apply(swigluOp, [gate, up], undefined)[0];
}

const geluOp: DifferentiableOp<void> = {
  name: 'gelu',
  forward(ctx, [x]) {
    ctx.save(x);
    return [m.gelu(x)];
  },
  backward(ctx, [g]) {
    return [m.geluBackward(g!, ctx.saved[0])];
  },
};

export function gelu(x: Variable): Variable {
  return apply(geluOp, [x], undefined)[0];
}

// ---- arithmetic and shapes -------------------------------------------------------------------
const addOp: DifferentiableOp<{ alpha: number; beta: number }> = {
  name: 'add',
  forward(_ctx, [a, b], p) {
    const y = m.clone(a);
    if (p.alpha !== 1) scaleInPlace(y, p.alpha);
    addScaled(y, b, p.beta);
    return [y];
  },
  backward(ctx, [g], p) {
    // Each input gets its own tensor: the tape accumulates into them in place.
    const da = ctx.needsInputGrad[0] ? m.clone(g!) : null;
    if (da && p.alpha !== 1) scaleInPlace(da, p.alpha);
    const db = ctx.needsInputGrad[1] ? m.clone(g!) : null;
    if (db && p.beta !== 1) scaleInPlace(db, p.beta);
    return [da, db];
  },
};

/** alpha * a + beta * b (same shape). */
export function add(a: Variable, b: Variable, alpha = 1, beta = 1): Variable {
  return apply(addOp, [a, b], { alpha, beta })[0];
}

const reshapeOp: DifferentiableOp<{ shape: readonly number[] }> = {
  name: 'reshape',
  forward(ctx, [x], p) {
    ctx.data.inShape = x.shape;
    return [x.reshape(p.shape)];
  },
  backward(ctx, [g]) {
    return [g!.reshape(ctx.data.inShape as number[])];
  },
};

export function reshape(x: Variable, shape: readonly number[]): Variable {
  return apply(reshapeOp, [x], { shape })[0];
}

// Concatenation along dim 1 (the sequence): the KV cache of chunked training.
const concatSeqOp: DifferentiableOp<void> = {
  name: 'concatSeq',
  forward(ctx, xs) {
    const total = xs.reduce((s, x) => s + x.shape[1], 0);
    const out = Tensor.empty([xs[0].shape[0], total, ...xs[0].shape.slice(2)], { device: xs[0].device });
    let off = 0;
    for (const x of xs) {
      m.copyBlock(x, 0, out, off, x.shape[1]);
      off += x.shape[1];
    }
    ctx.data.lengths = xs.map((x) => x.shape[1]);
    return [out];
  },
  backward(ctx, [g]) {
    let off = 0;
    return (ctx.data.lengths as number[]).map((len, i) => {
      const start = off;
      off += len;
      if (!ctx.needsInputGrad[i]) return null;
      const d = Tensor.empty([g!.shape[0], len, ...g!.shape.slice(2)], { device: g!.device });
      m.copyBlock(g!, start, d, 0, len);
      return d;
    });
  },
};

export function concatSeq(xs: readonly Variable[]): Variable {
  return xs.length === 1 ? xs[0] : apply(concatSeqOp, xs, undefined)[0];
}

const sliceSeqOp: DifferentiableOp<{ start: number; length: number }> = {
  name: 'sliceSeq',
  forward(ctx, [x], p) {
    ctx.data.inShape = x.shape;
    const out = Tensor.empty([x.shape[0], p.length, ...x.shape.slice(2)], { device: x.device });
    m.copyBlock(x, p.start, out, 0, p.length);
    return [out];
  },
  backward(ctx, [g], p) {
    const d = Tensor.zeros(ctx.data.inShape as number[], { device: g!.device });
    m.copyBlock(g!, 0, d, p.start, p.length);
    return [d];
  },
};

/** x[:, start : start + length] along dim 1. */
export function sliceSeq(x: Variable, start: number, length: number): Variable {
  return apply(sliceSeqOp, [x], { start, length })[0];
}

// base [N, D] with rows `rows` replaced by src [n, D] (image features into placeholders).
const spliceRowsOp: DifferentiableOp<{ rows: Int32Array }> = {
  name: 'spliceRows',
  forward(_ctx, [base, src], p) {
    const out = m.clone(base);
    m.scatterRows(src, p.rows, out);
    return [out];
  },
  backward(ctx, [g], p) {
    const D = g!.shape[g!.shape.length - 1];
    let dbase: Tensor | null = null;
    if (ctx.needsInputGrad[0]) {
      dbase = m.clone(g!);
      const zeros = Tensor.zeros([p.rows.length, D], { device: g!.device });
      m.scatterRows(zeros, p.rows, dbase);
      zeros.dispose();
    }
    const dsrc = ctx.needsInputGrad[1] ? tapGather(g!, p.rows) : null;
    return [dbase, dsrc];
  },
};

export function spliceRows(base: Variable, src: Variable, rows: Int32Array): Variable {
  return apply(spliceRowsOp, [base, src], { rows })[0];
}

// ---- losses --------------------------------------------------------------------------------
// Loss and gradient in one pass (forward); backward scales by the incoming scalar.
const crossEntropyOp: DifferentiableOp<{ targets: Int32Array; ignoreIndex: number; divisor?: number }> = {
  name: 'crossEntropy',
  forward(ctx, [logits], p) {
    const r = m.crossEntropy(logits, p.targets, { ignoreIndex: p.ignoreIndex, divisor: p.divisor, withGrad: ctx.needsInputGrad[0] });
    if (r.dlogits) ctx.own(r.dlogits);
    ctx.data.count = r.count;
    return [Tensor.fromArray(new Float32Array([r.loss]), [1], { device: logits.device })];
  },
  backward(ctx, [g]) {
    if (!ctx.needsInputGrad[0]) return [null];
    const scale = g ? (g.toArray()[0] as number) : 0;
    const out = ctx.owned[0].reshape(ctx.owned[0].shape);
    if (scale !== 1) scaleInPlace(out, scale);
    return [out];
  },
};

/** Mean cross-entropy of logits [..., V] against targets (ignoreIndex -100 skipped); a [1] Variable. */
export function crossEntropy(logits: Variable, targets: Int32Array, options: { ignoreIndex?: number; divisor?: number } = {}): Variable {
  return apply(crossEntropyOp, [logits], { targets, ignoreIndex: options.ignoreIndex ?? -100, divisor: options.divisor })[0];
}


// ---- scaling ---------------------------------------------------------------------------------
const scaleOp: DifferentiableOp<{ alpha: number }> = {
  name: 'scale',
  forward(_ctx, [x], p) {
    const y = m.clone(x);
    scaleInPlace(y, p.alpha);
    return [y];
  },
  backward(ctx, [g], p) {
    if (!ctx.needsInputGrad[0]) return [null];
    const d = m.clone(g!);
    scaleInPlace(d, p.alpha);
    return [d];
  },
};

/** alpha * x */
export function scale(x: Variable, alpha: number): Variable {
  return apply(scaleOp, [x], { alpha })[0];
}
