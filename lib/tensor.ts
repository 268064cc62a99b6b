// Tensor: a contiguous float32/int32 buffer on the CPU or a CUDA device, backed by
// native memory. Free it with dispose() (or `using t = ...`), or create it inside
// scope(), which frees everything made inside except what is returned. The GC frees
// forgotten tensors too, but only eventually: treat that as a safety net.
import { fail } from './errors';
import { native, type NativeTensor } from './native';

export type DType = 'float32' | 'int32';
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type TypedArrayOf<D extends DType> = D extends 'int32' ? Int32Array : Float32Array;

const disposeSymbol: typeof Symbol.dispose = (Symbol.dispose ?? Symbol.for('nodejs.dispose')) as typeof Symbol.dispose;

// Open scopes, innermost last. Each tracks the tensors created while it is open.
const scopes: Set<Tensor>[] = [];

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  #native: NativeTensor | null;
  // For tensors wrapping foreign memory: the object that owns it, kept reachable
  // for as long as this tensor is.
  readonly #owner: unknown;

  /** Wraps a native handle; use the static factories instead. */
  constructor(handle: NativeTensor, owner?: unknown) {
    this.#native = handle;
    this.shape = Object.freeze(handle.shape());
    this.dtype = handle.dtype();
    this.device = handle.device() as Device;
    this.#owner = owner;
    scopes[scopes.length - 1]?.add(this);
  }

  static empty(shape: readonly number[], options: { dtype?: DType; device?: Device } = {}): Tensor {
    return new Tensor(native().empty([...shape], options.dtype ?? 'float32', options.device ?? 'cpu'));
  }

  static zeros(shape: readonly number[], options: { device?: Device } = {}): Tensor {
    return Tensor.full(shape, 0, options);
  }

  static full(shape: readonly number[], value: number, options: { device?: Device } = {}): Tensor {
    const t = Tensor.empty(shape, { dtype: 'float32', device: options.device });
    native().fill(t.native, value);
    return t;
  }

  /** Copies a Float32Array or Int32Array into a new tensor (shape defaults to 1-D). */
  static fromArray(data: Float32Array | Int32Array, shape?: readonly number[], options: { device?: Device } = {}): Tensor {
    return new Tensor(native().fromArray(data, [...(shape ?? [data.length])], options.device ?? 'cpu'));
  }

  /**
   * Wraps memory owned by another library without copying. `owner` is held by the
   * tensor so the memory stays alive while the tensor does; disposing the tensor
   * never frees foreign memory.
   */
  static fromDevicePointer(
    pointer: bigint,
    shape: readonly number[],
    options: { dtype?: DType; device: Device; owner: unknown },
  ): Tensor {
    if (options.owner === undefined || options.owner === null) {
      fail('ERR_VALR_ARGUMENT', "fromDevicePointer needs options.owner: the object that keeps the memory alive");
    }
    const handle = native().wrapDevicePointer(pointer, [...shape], options.dtype ?? 'float32', options.device);
    return new Tensor(handle, options.owner);
  }

  /** The native handle; throws ERR_VALR_DISPOSED after dispose(). */
  get native(): NativeTensor {
    if (!this.#native) fail('ERR_VALR_DISPOSED', `tensor [${this.shape.join(', ')}] was disposed and cannot be used`);
    return this.#native;
  }

  get isDisposed(): boolean {
    return this.#native === null;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get owner(): unknown {
    return this.#owner;
  }

  /** A copy of the contents in a JS-owned typed array. */
  toArray(): Float32Array | Int32Array {
    const buf = this.native.read();
    return this.dtype === 'int32' ? new Int32Array(buf) : new Float32Array(buf);
  }

  /** A copy on another device (always a new tensor, even on the same device). */
  to(device: Device): Tensor {
    return new Tensor(this.native.to(device));
  }

  /** Same memory, another shape of the same size. */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.native.reshape([...shape]), this.#owner);
  }

  /** Overwrites the contents from a typed array of the same dtype and size. */
  write(data: Float32Array | Int32Array): this {
    this.native.write(data);
    return this;
  }

  /** The device address (CUDA: a device pointer), for handing to other native libraries. */
  devicePointer(): bigint {
    return this.native.devicePointer();
  }

  /** The cudaStream_t that valr-node queues this device's work on (null on CPU). */
  stream(): bigint | null {
    return this.native.stream();
  }

  dispose(): void {
    if (!this.#native) return;
    this.#native.dispose();
    this.#native = null;
    for (const s of scopes) s.delete(this);
  }

  [disposeSymbol](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device}${this.isDisposed ? ', disposed' : ''})`;
  }
}

// Tensors reachable from a scope's return value (arrays, plain objects, Maps, Sets).
function collectTensors(value: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Tensor) {
    out.add(value);
  } else if (Array.isArray(value) || value instanceof Set) {
    for (const v of value) collectTensors(v, out, seen);
  } else if (value instanceof Map) {
    for (const [k, v] of value) {
      collectTensors(k, out, seen);
      collectTensors(v, out, seen);
    }
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, seen);
  }
}

/**
 * Runs `fn` and disposes every tensor created during it, except the tensors found
 * in its return value, which move to the enclosing scope. Synchronous functions
 * only: an async function's later allocations would escape the scope.
 */
export function scope<T>(fn: () => T): T {
  const created = new Set<Tensor>();
  scopes.push(created);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) fail('ERR_VALR_ARGUMENT', 'scope() takes a synchronous function; await outside it');
  } catch (e) {
    scopes.pop();
    for (const t of created) t.dispose();
    throw e;
  }
  scopes.pop();
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  for (const t of created) if (!kept.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) for (const t of kept) if (created.has(t)) parent.add(t);
  return result;
}

/** Puts a kept tensor back into the innermost open scope, which then frees it on exit. */
export function adopt<T extends Tensor>(t: T): T {
  scopes[scopes.length - 1]?.add(t);
  return t;
}

/** Takes a tensor out of every open scope so that scope() exit leaves it alone. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}
