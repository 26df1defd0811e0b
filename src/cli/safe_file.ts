/**
 * Files the CLI writes that hold cache data (backups): created 0600 with an
 * exclusive create that does not follow symlinks, written under a temporary name
 * beside the target, and put in place at the end: with link() when the target
 * must not exist (atomic no-clobber), with rename() over it under --force. A
 * symlink at the target is refused, --force or not. A failed run leaves nothing.
 */
import { constants } from 'node:fs'
import { link, lstat, open, rename, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { Writable } from 'node:stream'
import { CliError, oneLine } from './errors.js'

export const FILE_MODE = 0o600

export interface OutFile {
  /** Writes to the temporary file; end it before commit(). */
  stream: Writable
  /** Closes the temporary file and puts it at the target. */
  commit(): Promise<void>
  /** Closes and removes the temporary file. Idempotent. */
  abort(): Promise<void>
}

/** Why `path` cannot be written (with `force` saying whether it may be replaced); undefined when it can. */
export async function targetProblem(path: string, force: boolean): Promise<string | undefined> {
  let st
  try {
    st = await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    return oneLine(err)
  }
  if (st.isSymbolicLink()) return 'it is a symbolic link, which backups never follow (even with --force); give the real path'
  if (!st.isFile()) return 'it exists and is not a regular file'
  if (!force) return 'it already exists; pass --force to replace it'
  return undefined
}

/** Opens a new 0600 temporary file beside `path`; see the module comment. */
export async function openOutFile(path: string, force: boolean): Promise<OutFile> {
  const problem = await targetProblem(path, force)
  if (problem) throw new CliError(`will not write ${path}: ${problem}`)
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  let handle: FileHandle
  try {
    handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, FILE_MODE)
  } catch (err) {
    throw new CliError(`cannot write ${path}: ${oneLine(err)}`, { cause: err })
  }
  let done = false
  const abort = async () => {
    if (done) return
    done = true
    await handle.close().catch(() => {})
    await unlink(temp).catch(() => {})
  }
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      handle.write(chunk).then(() => callback(), callback)
    },
  })
  return {
    stream,
    abort,
    async commit() {
      try {
        await handle.sync()
        await handle.close()
        done = true
        if (force) {
          // The target may have become a symlink since the check: rename replaces the link itself, never what it points to.
          await rename(temp, path)
        } else {
          // link() fails with EEXIST when the target appeared meanwhile: never clobbered.
          await link(temp, path)
          await unlink(temp)
        }
      } catch (err) {
        done = false
        await abort()
        const why = (err as NodeJS.ErrnoException).code === 'EEXIST' ? 'it was created by someone else meanwhile' : oneLine(err)
        throw new CliError(`cannot write ${path}: ${why}`, { cause: err })
      }
    },
  }
}
