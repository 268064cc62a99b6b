// Writing a file atomically: a crash at any moment leaves either the old file or the
// new one, never a partial file. The temp file lives next to `file` (same file system,
// so the rename is atomic), is fsynced before the rename and removed on failure; the
// directory is fsynced afterwards so the rename itself is durable (best effort:
// Windows cannot fsync a directory).
import * as fs from 'fs';
import * as path from 'path';

let counter = 0;

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const dir = path.dirname(path.resolve(file));
  const tmp = `${file}.tmp-${process.pid}-${Date.now().toString(36)}${(++counter).toString(36)}`;
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
    /* best effort */
  } finally {
    if (dh) await dh.close().catch(() => undefined);
  }
}
