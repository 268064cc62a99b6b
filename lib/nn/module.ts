// Module: a tree of parameters (Variables that require gradients) and sub-modules.
// Parameter names come from field names and array indices, so a field layout that
// mirrors Hugging Face's gives its checkpoint names (model.layers.0.self_attn.q_proj.weight).
import { fail } from '../errors';
import { keep, Tensor, type Device } from '../tensor';
import { Variable } from '../autograd/function';

export abstract class Module {
  /** name -> parameter, in field order. */
  namedParameters(prefix = ''): [string, Variable][] {
    const out: [string, Variable][] = [];
    const visit = (value: unknown, name: string) => {
      if (value instanceof Variable) out.push([name, value]);
      else if (value instanceof Module) out.push(...value.namedParameters(`${name}.`));
      else if (Array.isArray(value)) value.forEach((v, i) => visit(v, `${name}.${i}`));
    };
    for (const [key, value] of Object.entries(this)) visit(value, `${prefix}${key}`);
    return out;
  }

  parameters(): Variable[] {
    return this.namedParameters().map(([, p]) => p);
  }

  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.value.size, 0);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Stops (or restarts) gradients into every parameter of this module. */
  freeze(frozen = true): this {
    for (const p of this.parameters()) p.requiresGrad = !frozen;
    return this;
  }

  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters().map(([n, p]) => [n, p.value]));
  }

  /**
   * Copies tensors (or typed arrays) into the parameters by name, checking shapes.
   * strict: every parameter must be given and every given name must exist.
   */
  loadStateDict(state: Map<string, Float32Array | Tensor>, options: { strict?: boolean } = {}): string[] {
    const params = new Map(this.namedParameters());
    const missing: string[] = [];
    for (const [name, p] of params) {
      const src = state.get(name);
      if (!src) {
        missing.push(name);
        continue;
      }
      const data = src instanceof Tensor ? (src.toArray() as Float32Array) : src;
      if (data.length !== p.value.size) {
        fail('ERR_VALR_SHAPE', `parameter '${name}' has shape [${p.value.shape.join(', ')}] (${p.value.size} values) but the state has ${data.length}`);
      }
      p.value.write(data);
    }
    if (options.strict !== false) {
      if (missing.length) fail('ERR_VALR_ARGUMENT', `missing parameters: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''}`);
      const unknown = [...state.keys()].filter((k) => !params.has(k));
      if (unknown.length) fail('ERR_VALR_ARGUMENT', `unknown parameters: ${unknown.slice(0, 8).join(', ')}`);
    }
    return missing;
  }

  /** Moves every parameter to `device` (a copy; the old buffers are freed). */
  to(device: Device): this {
    for (const p of this.parameters()) {
      if (p.value.device === device) continue;
      const moved = keep(p.value.to(device));
      p.value.dispose();
      (p as { value: Tensor }).value = moved;
      p.zeroGrad();
    }
    return this;
  }

  dispose(): void {
    for (const p of this.parameters()) {
      p.zeroGrad();
      p.value.dispose();
    }
  }
}

/** Deterministic parameter initialisation (mulberry32 + Box-Muller) so runs reproduce from a seed. */
export class Initializer {
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
  normal(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = Math.max(this.next(), 1e-12), v = this.next();
      out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
    return out;
  }
}

export function parameter(data: Float32Array, shape: readonly number[], device: Device): Variable {
  return new Variable(keep(Tensor.fromArray(data, shape, { device })), { requiresGrad: true });
}
