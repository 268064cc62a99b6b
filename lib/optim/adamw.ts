// AdamW (torch.optim.AdamW semantics: decoupled weight decay, bias correction),
// with parameter groups (e.g. a separate learning rate for the REPA projectors)
// and global-norm gradient clipping.
import { native } from '../native';
import type { Variable } from '../autograd/function';
import { fail } from '../errors';
import { keep, Tensor } from '../tensor';
import { scaleInPlace } from '../ops/alignment';

export interface ParamGroup {
  params: Variable[];
  lr: number;
  weightDecay?: number;
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class AdamW {
  readonly groups: Required<ParamGroup>[];
  readonly betas: [number, number];
  readonly eps: number;
  step = 0;
  readonly #state = new Map<Variable, { m: Tensor; v: Tensor }>();

  constructor(groups: ParamGroup[], options: AdamWOptions = {}) {
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.groups = groups.map((g) => ({ params: g.params, lr: g.lr, weightDecay: g.weightDecay ?? options.weightDecay ?? 0.01 }));
    for (const g of this.groups) if (!(g.lr >= 0)) fail('ERR_VALR_ARGUMENT', `learning rate must be >= 0, got ${g.lr}`);
  }

  /** One update of every parameter that has a gradient. */
  update(): void {
    this.step++;
    for (const g of this.groups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        let s = this.#state.get(p);
        if (!s) {
          s = { m: keep(Tensor.zeros(p.value.shape, { device: p.value.device })), v: keep(Tensor.zeros(p.value.shape, { device: p.value.device })) };
          this.#state.set(p, s);
        }
        native().adamw(p.value.native, p.grad.native, s.m.native, s.v.native, g.lr, this.betas[0], this.betas[1], this.eps, g.weightDecay, this.step);
      }
    }
  }

  /** The optimizer state by parameter index, for checkpoints. */
  state(params: Variable[]): { m: Tensor; v: Tensor }[] {
    return params.map((p) => this.#state.get(p)!).filter(Boolean);
  }

  setState(p: Variable, m: Float32Array, v: Float32Array): void {
    this.#state.set(p, {
      m: keep(Tensor.fromArray(m, p.value.shape, { device: p.value.device })),
      v: keep(Tensor.fromArray(v, p.value.shape, { device: p.value.device })),
    });
  }

  dispose(): void {
    for (const s of this.#state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.#state.clear();
  }
}

/** Scales all gradients so their global L2 norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(params: Variable[], maxNorm: number): number {
  let sq = 0;
  for (const p of params) if (p.grad) sq += native().sumSquares(p.grad.native);
  const norm = Math.sqrt(sq);
  if (norm > maxNorm && norm > 0) for (const p of params) if (p.grad) scaleInPlace(p.grad, maxNorm / (norm + 1e-6));
  return norm;
}
