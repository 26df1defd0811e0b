/**
 * Safe files for the write-ahead log and its dead-letter file.
 *
 *   - The log directory is created 0700. An existing one must be a directory owned
 *     by this process's user and not writable by group or others; anything else is
 *     refused with E_INVALID_OPTION, naming what was found and what is needed.
 *     (Inside such a directory nobody but this user, and root, can create, rename
 *     or replace entries, so the checks below cannot be raced by other users.)
 *   - Files are created 0600 with exclusive create (`O_CREAT | O_EXCL`) and
 *     `O_NOFOLLOW`: a symlink (even a dangling one) planted at the path is never
 *     followed. A temp file left behind is unlinked (which removes a symlink, never
 *     its target) and created again.
 *   - Files read at open (segments) must be regular files owned by this user.
 * On platforms without uids (Windows) the owner and mode checks are skipped.
 */
import { constants } from 'node:fs'
import { chmod, lstat, mkdir, open as fsOpen, stat, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { InvalidOptionError } from '../errors.js'

export const DIR_MODE = 0o700
export const FILE_MODE = 0o600
const NOFOLLOW = constants.O_NOFOLLOW ?? 0

const uid = (): number | undefined => (typeof process.getuid === 'function' ? process.getuid() : undefined)
const octal = (mode: number): string => `0${(mode & 0o777).toString(8).padStart(3, '0')}`

/** Why `st` may not hold the log (undefined = fine). */
function dirProblem(st: Stats): string | undefined {
  if (!st.isDirectory()) return 'is not a directory'
  const me = uid()
  if (me === undefined) return undefined
  if (st.uid !== me) return `is owned by uid ${st.uid}, not by this process's user (uid ${me}); it must be owned by uid ${me}`
  if ((st.mode & 0o022) !== 0) return `has mode ${octal(st.mode)}, writable by ${st.mode & 0o020 ? 'group' : 'others'}${(st.mode & 0o022) === 0o022 ? ' and others' : ''}; it must not be writable by group or others (chmod 700)`
  return undefined
}

/**
 * Creates `dir` (0700, parents as needed) or checks an existing one. Throws
 * InvalidOptionError when it is not a directory owned by this user, or is writable
 * by group or others.
 */
export async function secureDir(dir: string, what = 'write-ahead log directory'): Promise<void> {
  await makeDirs(resolve(dir))
  const st = await stat(dir)
  const problem = dirProblem(st)
  if (problem) throw new InvalidOptionError(`The ${what} ${dir} ${problem}.`)
  // Created by mkdir under a permissive umask is still 0700; an existing 0755 one is tightened.
  if (uid() !== undefined && (st.mode & 0o077) !== 0) await chmod(dir, DIR_MODE)
}

/**
 * `mkdir -p` with each level tried at most twice. Node's `mkdir(…, { recursive: true })`
 * never settles on a path where mkdir answers ENOENT although the parent exists
 * (under /proc, for one): it retries the parent and the child forever. Here such a
 * path fails with the child's ENOENT.
 */
async function makeDirs(dir: string, depth = 0): Promise<void> {
  try {
    await mkdir(dir, { mode: DIR_MODE })
    return
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return
    const parent = dirname(dir)
    if (code !== 'ENOENT' || parent === dir || depth > 256) throw err
  }
  await makeDirs(dirname(dir), depth + 1)
  try {
    await mkdir(dir, { mode: DIR_MODE })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
}

/**
 * Checks a file found in the log directory before it is read: a regular file (not a
 * symlink, FIFO or device) owned by this user. Throws InvalidOptionError otherwise.
 */
export async function checkOwnFile(file: string): Promise<void> {
  const st = await lstat(file)
  if (!st.isFile()) throw new InvalidOptionError(`The write-ahead log file ${file} is not a regular file (a symlink, directory or device); remove it.`)
  const me = uid()
  if (me !== undefined && st.uid !== me) {
    throw new InvalidOptionError(`The write-ahead log file ${file} is owned by uid ${st.uid}, not by this process's user (uid ${me}); it was not written by this cache and is not replayed. Move it away.`)
  }
}

/** Creates `file` exclusively (0600, never through a symlink) and opens it for writing. */
export function createExclusive(file: string, append = false): Promise<FileHandle> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW | (append ? constants.O_APPEND : 0)
  return fsOpen(file, flags, FILE_MODE)
}

/**
 * Creates a temp file exclusively; one left behind (by a crash, or planted as a
 * symlink) is unlinked first: unlink removes the link, never what it points to.
 */
export async function createTemp(file: string): Promise<FileHandle> {
  try {
    return await createExclusive(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  await unlink(file)
  return createExclusive(file)
}

/** Opens `file` for appending (created 0600 if missing), never through a symlink; it must be a regular file of this user. */
export async function openAppend(file: string): Promise<FileHandle> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | NOFOLLOW
  let fh: FileHandle
  try {
    fh = await fsOpen(file, flags, FILE_MODE)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new InvalidOptionError(`${file} is a symlink; nearcache never writes through one. Remove it.`)
    throw err
  }
  try {
    const st = await fh.stat()
    const me = uid()
    if (!st.isFile()) throw new InvalidOptionError(`${file} is not a regular file; remove it.`)
    if (me !== undefined && st.uid !== me) throw new InvalidOptionError(`${file} is owned by uid ${st.uid}, not by this process's user (uid ${me}); move it away.`)
    return fh
  } catch (err) {
    await fh.close()
    throw err
  }
}

/** Opens `file` for reading without following a symlink (a FIFO would block: regular files only). */
export async function openRead(file: string): Promise<FileHandle> {
  const fh = await fsOpen(file, constants.O_RDONLY | NOFOLLOW | (constants.O_NONBLOCK ?? 0))
  const st = await fh.stat()
  if (!st.isFile()) {
    await fh.close()
    throw new InvalidOptionError(`${file} is not a regular file; remove it.`)
  }
  return fh
}

// ---------------------------------------------------------------- fsync, writes

export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined
  try {
    fh = await fsOpen(dir, 'r')
    await fh.sync()
  } catch (err) {
    // Some platforms (Windows) cannot open or fsync a directory; elsewhere it is an error.
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw err
  } finally {
    await fh?.close()
  }
}

export async function writeFully(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done)
    if (bytesWritten <= 0) throw new Error(`write to the write-ahead log made no progress at ${position + done}`)
    done += bytesWritten
  }
}
