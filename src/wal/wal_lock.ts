/**
 * The write-ahead log directory's pid lock: `<dir>/lock` holds the pid of the
 * process that has the log open, and a second process is refused while that pid
 * is alive. A lock left by a process that is gone is stale and taken over. (A pid
 * lock cannot tell processes in different pid namespaces sharing a volume apart.)
 */
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidOptionError } from '../errors.js'
import { createExclusive } from './wal_files.js'

const LOCK = 'lock'

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Takes the lock of `dir`; throws InvalidOptionError while a live process holds it. */
export async function takeLock(dir: string): Promise<void> {
  const file = join(dir, LOCK)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await createExclusive(file)
      try {
        await fh.writeFile(`${process.pid}\n`)
      } finally {
        await fh.close()
      }
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10)
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      throw new InvalidOptionError(`The write-ahead log in ${dir} is in use by process ${pid}; give each process its own directory (or stop that process).`)
    }
    // Left behind by a process that is gone (or by this pid before a restart): stale.
    await rm(file, { force: true })
  }
  throw new InvalidOptionError(`Could not take the lock ${file}; another process keeps creating it.`)
}

/** Releases the lock of `dir` taken by `takeLock`. */
export function releaseLock(dir: string): Promise<void> {
  return rm(join(dir, LOCK), { force: true })
}
