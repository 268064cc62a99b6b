// The transformer kernels as Tensor ops on any device (each runs where its inputs live).
import { native } from '../native';
import { Tensor } from '../tensor';

const T = (h: import('../native').NativeTensor) => new Tensor(h);

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: Tensor | null;
  out?: Tensor;
  accumulate?: boolean;
  alpha?: number;
}

/** op(a) @ op(b) (+ bias): a [M, K] or batched [B, M, K]; b [K, N], or [N, K] with transB. */
export function matmul(a: Tensor, b: Tensor, o: MatmulOptions = {}): Tensor {
  const r = native().gemm(a.native, b.native, !!o.transA, !!o.transB, o.bias?.native ?? null, o.out?.native ?? null, !!o.accumulate, o.alpha ?? 1);
  return o.out ?? T(r);
}

export interface AttentionOptions {
  keyMask?: Int32Array | null; // [B, Tk], 1 = attend
  causal?: boolean;
  scale?: number;
}

/** q [B, Tq, Hq, Dh], k/v [B, Tk, Hkv, Dh] -> out [B, Tq, Hq, Dh] and lse [B, Hq, Tq] */
export function attention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): { out: Tensor; lse: Tensor } {
  const r = native().attentionForward(q.native, k.native, v.native, o.keyMask ?? null, o.causal ?? true, o.scale);
  return { out: T(r.out), lse: T(r.lse) };
}

export function attentionBackward(
  dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, o: AttentionOptions = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const r = native().attentionBackward(dout.native, q.native, k.native, v.native, out.native, lse.native, o.keyMask ?? null, o.causal ?? true, o.scale);
  return { dq: T(r.dq), dk: T(r.dk), dv: T(r.dv) };
}

export function rmsNorm(x: Tensor, weight: Tensor, eps: number): { y: Tensor; rstd: Tensor } {
  const r = native().rmsNorm(x.native, weight.native, eps);
  return { y: T(r.y), rstd: T(r.rstd) };
}

export function rmsNormBackward(dy: Tensor, x: Tensor, weight: Tensor, rstd: Tensor, dw?: Tensor | null): Tensor {
  return T(native().rmsNormBackward(dy.native, x.native, weight.native, rstd.native, dw?.native ?? null));
}

export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): { y: Tensor; mean: Tensor; rstd: Tensor } {
  const r = native().layerNorm(x.native, weight.native, bias?.native ?? null, eps);
  return { y: T(r.y), mean: T(r.mean), rstd: T(r.rstd) };
}

export function layerNormBackward(
  dy: Tensor, x: Tensor, weight: Tensor, mean: Tensor, rstd: Tensor, dw?: Tensor | null, db?: Tensor | null,
): Tensor {
  return T(native().layerNormBackward(dy.native, x.native, weight.native, mean.native, rstd.native, dw?.native ?? null, db?.native ?? null));
}

/** Rotary embedding of x [B, T, H, Dh] at positions [B*T] (inverse: the backward). */
export function rope(x: Tensor, positions: Int32Array, theta: number, inverse = false): Tensor {
  return T(native().rope(x.native, positions, theta, inverse));
}

export function swiglu(gate: Tensor, up: Tensor): Tensor {
  return T(native().swiglu(gate.native, up.native));
}

export function swigluBackward(dy: Tensor, gate: Tensor, up: Tensor): { dgate: Tensor; dup: Tensor } {
  const r = native().swigluBackward(dy.native, gate.native, up.native);
  return { dgate: T(r.dgate), dup: T(r.dup) };
}

export function gelu(x: Tensor): Tensor {
  return T(native().gelu(x.native));
}

export function geluBackward(dy: Tensor, x: Tensor): Tensor {
  return T(native().geluBackward(dy.native, x.native));
}

/**
 * Cross-entropy of softmax(logits [N, V]) against targets [N] (ignoreIndex skipped),
 * mean over `divisor` (default: the counted targets); with `withGrad` also
 * dlogits = gradScale * d(loss)/d(logits), computed in the same pass.
 */
export function crossEntropy(
  logits: Tensor,
  targets: Int32Array,
  o: { ignoreIndex?: number; divisor?: number; withGrad?: boolean; gradScale?: number } = {},
): { loss: number; lossSum: number; count: number; dlogits: Tensor | null } {
  const r = native().crossEntropy(logits.native, targets, o.ignoreIndex ?? -100, o.divisor ?? null, !!o.withGrad, o.gradScale ?? 1);
  return { loss: r.loss, lossSum: r.lossSum, count: r.count, dlogits: r.dlogits ? T(r.dlogits) : null };
}

export function sumSquares(x: Tensor): number {
  return native().sumSquares(x.native);
}

/** dst[:, dstOffset + t] (=|+=) src[:, srcOffset + t] for t < length, along dim 1. */
export function copyBlock(src: Tensor, srcOffset: number, dst: Tensor, dstOffset: number, length: number, accumulate = false): void {
  native().copyBlock(src.native, srcOffset, dst.native, dstOffset, length, accumulate);
}

/** dst[rows[i], :] = src[i, :] in place; rows unique. */
export function scatterRows(src: Tensor, rows: Int32Array, dst: Tensor): void {
  native().scatterRows(src.native, rows, dst.native);
}

/** A copy of x (same device). */
export function clone(x: Tensor): Tensor {
  return x.to(x.device);
}
