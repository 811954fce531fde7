/**
 * Durable, atomic file replacement: write a temporary file in the same
 * directory, fsync it, rename it over the target, fsync the directory. A crash
 * leaves either the old or the new content, never a mix or an empty file.
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Creates `dir` (and parents) with `mode` when missing; an existing directory is left as is. */
export async function ensureDir(dir: string, mode = 0o700): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode });
  // mkdir's mode is filtered by the umask; make sure the directory we created is exactly `mode`.
  if (first !== undefined) await chmod(dir, mode);
}

/** Fsyncs a directory so that a rename or create inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // Some file systems refuse fsync on directories; the rename is still atomic there.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') throw err;
  } finally {
    await handle.close();
  }
}

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o600). */
  mode?: number;
  /** Refuse to replace an existing file (the rename becomes a link + unlink). */
  exclusive?: boolean;
}

/** Replaces `file` with `data` atomically and durably. */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o600;
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode);
  let done = false;
  try {
    try {
      await handle.chmod(mode); // the umask may have removed bits we asked for
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive) {
      await link(tmp, file); // EEXIST when the target appeared meanwhile
      await unlink(tmp);
    } else {
      await rename(tmp, file);
    }
    done = true;
  } finally {
    if (!done) await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dir);
}
