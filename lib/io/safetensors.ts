// safetensors read/write (https://github.com/huggingface/safetensors):
//   [8 bytes: little-endian u64 header length N][N bytes: UTF-8 JSON header][data buffer]
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets
// relative to the start of the data buffer) plus an optional "__metadata__": {string: string}.
//
// Every check a corrupt file can fail is made before anything is sized from the file's
// numbers, so a bad file is a ValrError('ERR_VALR_ARGUMENT') naming the file and the
// tensor, never a crash, a hang or a huge allocation.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeFileAtomic } from './atomic-file';
import { ValrError } from '../errors';

export interface TensorRecord {
  dtype: 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'F64' | 'U8' | 'I8' | 'BOOL' | string;
  shape: number[];
  /** Little-endian element bytes; from the parsers, a view into the file's buffer. */
  data: Uint8Array;
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, TensorRecord>;
}

/** Bytes per element of every dtype the format defines. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
});

/** Headers larger than this are refused (the reference implementation uses the same limit). */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const TENSOR_FIELDS = new Set(['dtype', 'shape', 'data_offsets']);
const LITTLE_ENDIAN = os.endianness() === 'LE';
const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function bad(source: string, message: string): never {
  throw new ValrError('ERR_VALR_ARGUMENT', `${source}: ${message}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function quote(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name).slice(1, -1);
}

/** Product of the dims, or -1 when it is not a safe integer. */
function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (d === 0) return 0;
  }
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return -1;
  }
  return n;
}

/** Reads the 8-byte prefix; returns the header length, checked against the limit and `total`. */
function headerLength(prefix: Uint8Array, total: number, source: string): number {
  if (prefix.byteLength < 8 || total < 8) bad(source, `file is ${total} bytes, too short for the 8-byte header length`);
  const dv = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
  if (hi !== 0 || lo > MAX_HEADER_BYTES) {
    const n = (BigInt(hi) << 32n) | BigInt(lo);
    bad(source, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (lo > total - 8) bad(source, `header length ${lo} runs past the end of the file (${total} bytes)`);
  return lo;
}

interface HeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** Parses and validates the JSON header against a data buffer of `dataLength` bytes. */
function parseHeader(headerBytes: Uint8Array, dataLength: number, source: string): { metadata: Record<string, string>; entries: HeaderEntry[] } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    bad(source, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    bad(source, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) bad(source, 'header JSON is not an object');

  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const name of Object.keys(json)) {
    const value = json[name];
    if (name === METADATA_KEY) {
      if (!isPlainObject(value)) bad(source, `${METADATA_KEY} is not an object`);
      const pairs: [string, string][] = [];
      for (const k of Object.keys(value)) {
        const v = value[k];
        if (typeof v !== 'string') bad(source, `${METADATA_KEY} value for '${quote(k)}' is not a string`);
        pairs.push([k, v]);
      }
      // fromEntries defines own properties, so a "__proto__" key stays a plain key.
      metadata = Object.fromEntries(pairs);
      continue;
    }
    const t = `tensor '${quote(name)}'`;
    if (!isPlainObject(value)) bad(source, `${t} entry is not an object`);
    for (const k of Object.keys(value)) {
      if (!TENSOR_FIELDS.has(k)) bad(source, `${t} has unknown field '${quote(k)}'`);
    }
    for (const k of TENSOR_FIELDS) {
      if (!hasOwn(value, k)) bad(source, `${t} is missing field '${k}'`);
    }
    const dtype = value.dtype;
    if (typeof dtype !== 'string' || !hasOwn(DTYPE_SIZES, dtype)) {
      bad(source, `${t} has unknown dtype ${JSON.stringify(dtype)?.slice(0, 40)}`);
    }
    const shape = value.shape;
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      bad(source, `${t} shape ${JSON.stringify(shape)?.slice(0, 80)} is not an array of non-negative integers`);
    }
    const offs = value.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !isCount(offs[0]) || !isCount(offs[1])) {
      bad(source, `${t} data_offsets ${JSON.stringify(offs)?.slice(0, 80)} is not [begin, end] with non-negative integers`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) bad(source, `${t} data_offsets [${begin}, ${end}] have begin > end`);
    if (end > dataLength) bad(source, `${t} data_offsets [${begin}, ${end}] run past the end of the ${dataLength}-byte data buffer`);
    const numel = numelOf(shape as number[]);
    const need = numel < 0 ? -1 : numel * DTYPE_SIZES[dtype];
    if (need < 0 || !Number.isSafeInteger(need)) bad(source, `${t} shape ${fmtShape(shape as number[])} is too large`);
    if (end - begin !== need) {
      bad(source, `${t} data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} ${fmtShape(shape as number[])} needs ${need}`);
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), begin, end });
  }

  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1], c = sorted[i];
    if (c.begin < p.end) {
      bad(source, `tensor '${quote(c.name)}' data_offsets [${c.begin}, ${c.end}] overlap tensor '${quote(p.name)}' [${p.begin}, ${p.end}]`);
    }
  }
  return { metadata, entries };
}

/**
 * Parses a whole safetensors file held in memory. The returned records' `data` are
 * zero-copy views into `buf` (so they may be unaligned for their dtype: use toFloat32 /
 * toInt32, which copy).
 */
export function parseSafetensors(buf: Uint8Array, source = '<buffer>'): SafetensorsFile {
  if (!(buf instanceof Uint8Array)) throw new ValrError('ERR_VALR_ARGUMENT', `${source}: expected a Uint8Array`);
  const n = headerLength(buf, buf.byteLength, source);
  const dataStart = 8 + n;
  const { metadata, entries } = parseHeader(buf.subarray(8, dataStart), buf.byteLength - dataStart, source);
  const tensors = new Map<string, TensorRecord>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: buf.subarray(dataStart + e.begin, dataStart + e.end) });
  }
  return { metadata, tensors };
}

export async function readSafetensors(file: string): Promise<SafetensorsFile> {
  const b = await fs.promises.readFile(file);
  return parseSafetensors(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), file);
}

export function readSafetensorsSync(file: string): SafetensorsFile {
  const b = fs.readFileSync(file);
  return parseSafetensors(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), file);
}

export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** Byte offsets from the start of the file. */
  begin: number;
  end: number;
}

/** Reads and validates only the header (no tensor data is loaded). */
export async function readSafetensorsHeader(file: string): Promise<{ metadata: Record<string, string>; tensors: Map<string, TensorInfo> }> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const prefix = new Uint8Array(8);
    if (size >= 8) await readFully(fh, prefix, 0, file);
    const n = headerLength(prefix, size, file);
    const header = new Uint8Array(n);
    await readFully(fh, header, 8, file);
    const { metadata, entries } = parseHeader(header, size - 8 - n, file);
    const tensors = new Map<string, TensorInfo>();
    for (const e of entries) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, begin: 8 + n + e.begin, end: 8 + n + e.end });
    return { metadata, tensors };
  } finally {
    await fh.close();
  }
}

async function readFully(fh: fs.promises.FileHandle, into: Uint8Array, position: number, source: string): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const { bytesRead } = await fh.read(into, done, into.byteLength - done, position + done);
    if (bytesRead === 0) bad(source, 'file ended while reading the header');
    done += bytesRead;
  }
}

// ---------------------------------------------------------------------------------------
// Conversions

let f16Table: Uint32Array | undefined;

/** float32 bit patterns of all 65536 float16 values (exact; NaN payloads kept). */
function f16Bits(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const e = (h >>> 10) & 0x1f;
    let m = h & 0x3ff;
    if (e === 0) {
      if (m === 0) {
        t[h] = sign;
      } else {
        // subnormal: m * 2^-24; normalise into a float32 normal
        let ex = -1;
        do {
          m <<= 1;
          ex++;
        } while ((m & 0x400) === 0);
        t[h] = (sign | ((127 - 15 - ex) << 23) | ((m & 0x3ff) << 13)) >>> 0;
      }
    } else if (e === 31) {
      t[h] = (sign | 0x7f800000 | (m << 13)) >>> 0;
    } else {
      t[h] = (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
    }
  }
  return (f16Table = t);
}

function checkRecord(rec: TensorRecord, name: string): number {
  if (!rec || !(rec.data instanceof Uint8Array) || !Array.isArray(rec.shape) || !rec.shape.every(isCount)) {
    throw new ValrError('ERR_VALR_ARGUMENT', `tensor '${quote(name)}': not a tensor record`);
  }
  const size = DTYPE_SIZES[rec.dtype];
  if (!hasOwn(DTYPE_SIZES, rec.dtype)) throw new ValrError('ERR_VALR_DTYPE', `tensor '${quote(name)}': unknown dtype ${rec.dtype}`);
  const numel = numelOf(rec.shape);
  if (numel < 0 || numel * size !== rec.data.byteLength) {
    throw new ValrError(
      'ERR_VALR_ARGUMENT',
      `tensor '${quote(name)}': ${rec.data.byteLength} bytes but ${rec.dtype} ${fmtShape(rec.shape)} needs ${numel < 0 ? 'too many' : numel * size}`,
    );
  }
  return numel;
}

/** Copies `bytes` (little-endian elements of `size` bytes) into an aligned buffer in host order. */
function alignedCopy(bytes: Uint8Array, size: number): ArrayBuffer {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  if (!LITTLE_ENDIAN && size > 1) {
    for (let i = 0; i < out.length; i += size) out.subarray(i, i + size).reverse();
  }
  return out.buffer;
}

/**
 * A Float32Array copy of the tensor: F32 copied, F16 and BF16 widened exactly, F64
 * rounded to nearest. Other dtypes are an ERR_VALR_DTYPE error.
 */
export function toFloat32(rec: TensorRecord, name = '<tensor>'): Float32Array {
  const n = checkRecord(rec, name);
  switch (rec.dtype) {
    case 'F32':
      return new Float32Array(alignedCopy(rec.data, 4));
    case 'F64':
      return Float32Array.from(new Float64Array(alignedCopy(rec.data, 8)));
    case 'F16':
    case 'BF16': {
      const src = new Uint16Array(alignedCopy(rec.data, 2));
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      if (rec.dtype === 'BF16') {
        for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
      } else {
        const t = f16Bits();
        for (let i = 0; i < n; i++) bits[i] = t[src[i]];
      }
      return out;
    }
    default:
      throw new ValrError('ERR_VALR_DTYPE', `tensor '${quote(name)}': cannot convert ${rec.dtype} to float32 (F32, F16, BF16 or F64 expected)`);
  }
}

/**
 * An Int32Array copy of an integer tensor: I32 copied; I64, U8, I8, I16, U16, U32 and BOOL
 * widened or narrowed with a range check. Other dtypes are an ERR_VALR_DTYPE error.
 */
export function toInt32(rec: TensorRecord, name = '<tensor>'): Int32Array {
  const n = checkRecord(rec, name);
  const range = (v: number | bigint, i: number): number => {
    if (v < -2147483648 || v > 2147483647) {
      throw new ValrError('ERR_VALR_RANGE', `tensor '${quote(name)}': element ${i} = ${v} does not fit in int32`);
    }
    return Number(v);
  };
  switch (rec.dtype) {
    case 'I32':
      return new Int32Array(alignedCopy(rec.data, 4));
    case 'I64':
    case 'U64':
    case 'U32': {
      const src =
        rec.dtype === 'I64' ? new BigInt64Array(alignedCopy(rec.data, 8))
        : rec.dtype === 'U64' ? new BigUint64Array(alignedCopy(rec.data, 8))
        : new Uint32Array(alignedCopy(rec.data, 4));
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = range(src[i], i);
      return out;
    }
    case 'I16':
      return Int32Array.from(new Int16Array(alignedCopy(rec.data, 2)));
    case 'U16':
      return Int32Array.from(new Uint16Array(alignedCopy(rec.data, 2)));
    case 'I8':
      return Int32Array.from(new Int8Array(alignedCopy(rec.data, 1)));
    case 'U8':
      return Int32Array.from(rec.data);
    case 'BOOL':
      return Int32Array.from(rec.data, (b) => (b ? 1 : 0));
    default:
      throw new ValrError('ERR_VALR_DTYPE', `tensor '${quote(name)}': cannot convert ${rec.dtype} to int32`);
  }
}

// ---------------------------------------------------------------------------------------
// Writing

export interface TensorToWrite {
  dtype?: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/**
 * Serialises tensors (F32 / I32) as a safetensors file: the header is padded with spaces to
 * a multiple of 8 bytes (so the data buffer starts 8-byte aligned) and the tensors are laid
 * out back to back in sorted name order (every tensor 4-byte aligned in the file).
 */
export function serializeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const arg = (m: string): never => {
    throw new ValrError('ERR_VALR_ARGUMENT', `serializeSafetensors: ${m}`);
  };
  if (!isPlainObject(tensors)) arg('tensors must be an object of {shape, data} records');
  const names = Object.keys(tensors).sort();
  // No prototype: a tensor named "__proto__" must be a key like any other.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) arg('metadata must be an object of strings');
    for (const k of Object.keys(metadata)) {
      if (typeof metadata[k] !== 'string') arg(`metadata value for '${quote(k)}' is not a string`);
    }
    header[METADATA_KEY] = Object.fromEntries(Object.keys(metadata).map((k) => [k, metadata[k]]));
  }
  let offset = 0;
  const parts: { bytes: Uint8Array; size: number; at: number }[] = [];
  for (const name of names) {
    if (name === METADATA_KEY) arg(`'${METADATA_KEY}' cannot be a tensor name`);
    const t = tensors[name];
    if (!isPlainObject(t)) arg(`tensor '${quote(name)}' is not a {shape, data} record`);
    const { shape, data } = t as unknown as TensorToWrite;
    let dtype = (t as unknown as TensorToWrite).dtype;
    if (data instanceof Float32Array) dtype ??= 'F32';
    else if (data instanceof Int32Array) dtype ??= 'I32';
    else arg(`tensor '${quote(name)}' data must be a Float32Array or Int32Array`);
    if ((dtype === 'F32') !== data instanceof Float32Array || (dtype !== 'F32' && dtype !== 'I32')) {
      arg(`tensor '${quote(name)}' dtype ${dtype} does not match its ${data.constructor.name}`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) arg(`tensor '${quote(name)}' shape must be an array of non-negative integers`);
    const numel = numelOf(shape);
    if (numel !== data.length) arg(`tensor '${quote(name)}' has ${data.length} elements but shape ${fmtShape(shape)} needs ${numel}`);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    header[name] = { dtype, shape: shape.slice(), data_offsets: [offset, offset + bytes.byteLength] };
    parts.push({ bytes, size: 4, at: offset });
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  let headerBytes = new TextEncoder().encode(json);
  const pad = (8 - (headerBytes.byteLength % 8)) % 8;
  if (pad) headerBytes = new TextEncoder().encode(json + ' '.repeat(pad));
  if (headerBytes.byteLength > MAX_HEADER_BYTES) arg(`header is ${headerBytes.byteLength} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  json = '';
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setUint32(0, headerBytes.byteLength, true);
  out.set(headerBytes, 8);
  const base = 8 + headerBytes.byteLength;
  for (const p of parts) {
    const dst = out.subarray(base + p.at, base + p.at + p.bytes.byteLength);
    dst.set(p.bytes);
    if (!LITTLE_ENDIAN) for (let i = 0; i < dst.length; i += p.size) dst.subarray(i, i + p.size).reverse();
  }
  return out;
}

/**
 * Writes the file atomically: a temporary file in the same directory is written and
 * fsynced, then renamed over `file`, then the directory is fsynced (best effort where the
 * platform cannot). A crash at any point leaves either the old file or the new one.
 */
export async function writeSafetensorsAtomic(file: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

// ---------------------------------------------------------------------------------------
// Sharded checkpoints

/**
 * Maps every tensor name of the checkpoint in `dir` to the absolute path of the file holding
 * it (path.resolve(dir, file)): from model.safetensors.index.json's "weight_map" when present,
 * else every tensor of model.safetensors (only its header is read).
 */
export async function readSafetensorsIndex(dir: string): Promise<Map<string, string>> {
  const indexPath = path.join(dir, 'model.safetensors.index.json');
  let text: string | undefined;
  try {
    text = await fs.promises.readFile(indexPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const map = new Map<string, string>();
  if (text === undefined) {
    const single = path.resolve(dir, 'model.safetensors');
    try {
      await fs.promises.access(single);
    } catch {
      bad(dir, 'neither model.safetensors.index.json nor model.safetensors exists');
    }
    const { tensors } = await readSafetensorsHeader(single);
    for (const name of tensors.keys()) map.set(name, single);
    return map;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    bad(indexPath, `not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json) || !isPlainObject(json.weight_map)) bad(indexPath, 'has no "weight_map" object');
  const wm = json.weight_map as Record<string, unknown>;
  for (const name of Object.keys(wm)) {
    const f = wm[name];
    if (typeof f !== 'string' || f === '' || path.isAbsolute(f) || f.split(/[\\/]/).some((s) => s === '..' || s === '')) {
      bad(indexPath, `weight_map entry for '${quote(name)}' is not a file name inside the checkpoint directory: ${JSON.stringify(f)}`);
    }
    map.set(name, path.resolve(dir, f));
  }
  return map;
}
