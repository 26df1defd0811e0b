import { InvalidOptionError } from '../errors.js'
import { describe } from '../util/units.js'

/** How the write-ahead log syncs to disk: 'always' per write, 'batch' per group commit, 'none' never. */
export type FsyncPolicy = 'always' | 'batch' | 'none'
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'batch', 'none']

/** The one validation of an fsync policy (options, the WAL and write-behind all use it). */
export function checkFsync(value: unknown, name = 'writeBehind.fsync'): FsyncPolicy {
  if (!(FSYNC_POLICIES as readonly unknown[]).includes(value)) {
    throw new InvalidOptionError(`${name} is 'always', 'batch' or 'none' (got ${describe(value)}).`)
  }
  return value as FsyncPolicy
}
