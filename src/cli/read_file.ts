import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { CliError, oneLine } from './errors.js'

/**
 * The CLI's reads of small files named on the command line (certificates, the
 * password file, the keys file): opened without hanging on a FIFO, checked on
 * the open descriptor (no swap between check and read), read with a bound.
 */

/**
 * Opens a regular file for reading; every failure is a CliError naming `what`
 * ("--tls-ca", "the keys file"). `noFollow`: a symbolic link is refused.
 */
export function openRegular(path: string, what: string, opts: { noFollow?: boolean } = {}): { fd: number; mode: number; uid: number } {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (opts.noFollow ? constants.O_NOFOLLOW : 0))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = opts.noFollow && (code === 'ELOOP' || code === 'EMLINK') ? 'it is a symbolic link; give the real path' : oneLine(err)
    throw new CliError(`cannot read ${what} ${path}: ${why}`, { cause: err })
  }
  const st = fstatSync(fd)
  if (!st.isFile()) {
    closeSync(fd)
    throw new CliError(`cannot read ${what} ${path}: not a regular file`)
  }
  return { fd, mode: st.mode, uid: st.uid }
}

/** At most `max` + 1 bytes of `fd` (one more than allowed tells the caller the file is too long). */
export function readBounded(fd: number, max: number): Buffer {
  const buf = Buffer.alloc(max + 1)
  let n = 0
  while (n < buf.length) {
    const got = readSync(fd, buf, n, buf.length - n, null)
    if (got === 0) break
    n += got
  }
  return buf.subarray(0, n)
}
