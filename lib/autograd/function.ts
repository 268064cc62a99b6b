// The contract every differentiable op follows, and the small tape that runs them.
// An op's forward() saves what backward() needs in its context; backward() gets one
// gradient per output and returns one per input (null where no gradient is needed).
// Gradients of leaves accumulate (+=) across uses and across backward() calls, so
// fan-out and micro-batch accumulation work; activation gradients are fresh tensors.
import { fail } from '../errors';
import { addScaled } from '../ops/alignment';
import { keep, Tensor } from '../tensor';

export class OpContext {
  readonly needsInputGrad: readonly boolean[];
  /** Tensors backward reads: inputs or outputs of the graph, which other ops may read too. */
  readonly saved: Tensor[] = [];
  /** Tensors only this op made and uses (statistics, fused gradients): freed after backward. */
  readonly owned: Tensor[] = [];
  readonly data: Record<string, unknown> = {};
  constructor(needsInputGrad: readonly boolean[]) {
    this.needsInputGrad = needsInputGrad;
  }
  save(...tensors: Tensor[]): void {
    this.saved.push(...tensors);
  }
  own(...tensors: Tensor[]): void {
    this.owned.push(...tensors);
  }
  /** Frees what this op owns once backward has run (or when nothing needs it). */
  release(): void {
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
    this.saved.length = 0;
  }
}

export interface DifferentiableOp<P = void> {
  readonly name: string;
  forward(ctx: OpContext, inputs: readonly Tensor[], params: P): Tensor[];
  backward(ctx: OpContext, gradOutputs: readonly (Tensor | null)[], params: P): (Tensor | null)[];
}

interface Node {
  ctx: OpContext;
  backward: (grads: readonly (Tensor | null)[]) => (Tensor | null)[];
  inputs: readonly Variable[];
  outputs: WeakRef<Variable>[];
  order: number;
}

let gradEnabled = true;
let nodeCounter = 0;

/** A tensor in the graph: a leaf (parameter or input) or the output of an op. */
export class Variable {
  readonly value: Tensor;
  grad: Tensor | null = null;
  requiresGrad: boolean;
  /** @internal */ node: Node | null = null;
  /** @internal */ outputIndex = 0;
  constructor(value: Tensor, options: { requiresGrad?: boolean } = {}) {
    this.value = value;
    this.requiresGrad = !!options.requiresGrad;
  }
  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }
}

/** Runs `fn` without recording (inference, evaluation). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function apply<P>(op: DifferentiableOp<P>, inputs: readonly Variable[], params: P): Variable[] {
  const needs = inputs.map((v) => gradEnabled && (v.requiresGrad || v.node !== null));
  const ctx = new OpContext(needs);
  const outs = op.forward(ctx, inputs.map((v) => v.value), params).map((t) => new Variable(t));
  if (needs.some(Boolean)) {
    const node: Node = {
      ctx,
      backward: (grads) => op.backward(ctx, grads, params),
      inputs,
      outputs: outs.map((o) => new WeakRef(o)),
      order: nodeCounter++,
    };
    outs.forEach((o, i) => {
      o.node = node;
      o.outputIndex = i;
    });
  } else {
    ctx.release();
  }
  return outs;
}

function accumulate(v: Variable, g: Tensor): void {
  if (!v.grad) {
    v.grad = keep(g); // outlives the scope() a training step runs in
    return;
  }
  addScaled(v.grad, g, 1);
  g.dispose();
}

/**
 * Backpropagates from `root` (seed: `grad`, default ones). Leaves that require a
 * gradient get it added to .grad; the graph's saved tensors are freed.
 */
export function backward(root: Variable, grad?: Tensor): void {
  if (!root.node && !root.requiresGrad) fail('ERR_VALR_ARGUMENT', 'backward() on a value that does not depend on any parameter');
  const seed = grad ?? Tensor.full(root.value.shape, 1, { device: root.value.device });
  // Nodes in reverse creation order are a valid reverse topological order.
  const pending = new Map<Node, (Tensor | null)[]>();
  const add = (v: Variable, g: Tensor) => {
    if (!v.node) {
      if (v.requiresGrad) accumulate(v, g);
      else g.dispose();
      return;
    }
    let slots = pending.get(v.node);
    if (!slots) pending.set(v.node, (slots = v.node.outputs.map(() => null)));
    const cur = slots[v.outputIndex];
    if (cur) {
      addScaled(cur, g, 1);
      g.dispose();
    } else slots[v.outputIndex] = g;
  };
  add(root, seed);
  while (pending.size) {
    let next: Node | null = null;
    for (const n of pending.keys()) if (!next || n.order > next.order) next = n;
    const grads = pending.get(next!)!;
    pending.delete(next!);
    const inGrads = next!.backward(grads);
    for (const g of grads) g?.dispose();
    next!.ctx.release();
    next!.inputs.forEach((v, i) => {
      const g = inGrads[i];
      if (g && next!.ctx.needsInputGrad[i]) add(v, g);
      else g?.dispose();
    });
  }
}
