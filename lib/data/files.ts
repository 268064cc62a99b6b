// Small file helpers for the data side: atomic writes (temp file in the same directory,
// fsync, rename, fsync the directory) and JSONL reading with line-numbered errors.
import * as fs from 'fs';
import * as path from 'path';
import { hashSeed } from './prng';
import { ValrError } from '../errors';

let tmpCounter = 0;

/**
 * Writes `data` to `file` atomically: a crash leaves either the old file or the new one,
 * never a partial file. The temp file lives next to `file` (same file system, so the
 * rename is atomic) and is removed on failure.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const dir = path.dirname(path.resolve(file));
  const tag = hashSeed(process.pid, Date.now(), ++tmpCounter).toString(36);
  const tmp = `${file}.tmp-${process.pid}-${tag}`;
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(tmp, 'wx');
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done);
      done += bytesWritten;
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fs.promises.rename(tmp, file);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw e;
  }
  let dh: fs.promises.FileHandle | undefined;
  try {
    dh = await fs.promises.open(dir, 'r');
    await dh.sync();
  } catch {
    /* best effort: Windows cannot fsync a directory */
  } finally {
    if (dh) await dh.close().catch(() => undefined);
  }
}

/** One JSON value per line, '\n'-terminated. */
export function toJsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
}

/**
 * Parses a JSONL text: blank lines are skipped; every other line must be a JSON object,
 * handed to `parse(obj, where)` with `where` = "file:line" for error messages.
 */
export function parseJsonl<T>(text: string, source: string, parse: (obj: Record<string, unknown>, where: string, line: number) => T): T[] {
  const out: T[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line.trim() === '') continue;
    const where = `${source}:${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new ValrError('ERR_VALR_ARGUMENT', `${where}: not valid JSON (${(e as Error).message})`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new ValrError('ERR_VALR_ARGUMENT', `${where}: expected a JSON object, got ${Array.isArray(obj) ? 'an array' : JSON.stringify(obj)}`);
    }
    out.push(parse(obj as Record<string, unknown>, where, i + 1));
  }
  return out;
}

/** Reads a whole text file; a missing file is a ValrError naming it. */
export function readTextSync(file: string, what = 'file'): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ValrError('ERR_VALR_ARGUMENT', `${what} ${file} cannot be read${code ? ` (${code})` : ''}`);
  }
}

export function readJsonSync(file: string, what = 'file'): unknown {
  const text = readTextSync(file, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ValrError('ERR_VALR_ARGUMENT', `${file}: not valid JSON (${(e as Error).message})`);
  }
}
