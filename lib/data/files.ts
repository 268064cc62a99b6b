// Small file helpers for the data side: atomic writes (temp file in the same directory,
// fsync, rename, fsync the directory) and JSONL reading with line-numbered errors.
import * as fs from 'fs';
import * as path from 'path';
import { ValrError } from '../errors';


export { writeFileAtomic } from '../io/atomic-file';

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
