/**
 * The write-ahead log's segment files: `wal-<seq, 16 digits>.log`, named after
 * the sequence number of the segment's first record; a damaged one is moved to
 * `<name>.corrupt` (or `.corrupt.<n>`) for an operator and never read or deleted by
 * the log again.
 */
import { rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { FsyncPolicy } from './fsync.js'
import { syncDir } from './wal_files.js'

const SEGMENT_RE = /^wal-(\d{16})\.log$/

export const segmentName = (base: number): string => `wal-${String(base).padStart(16, '0')}.log`
export const isSegmentName = (name: string): boolean => SEGMENT_RE.test(name)

export interface Segment {
  base: number
  file: string
  /** Last seq in the segment (base - 1 when empty). */
  last: number
  /** The newest segment found at open (its torn tail was already cut off). */
  newestAtOpen?: boolean
}

/** The segments among the file `names` of `dir`, oldest first; each one's `last` assumes the next one follows it. */
export function segmentsIn(dir: string, names: readonly string[]): Segment[] {
  const bases = names
    .map((n) => SEGMENT_RE.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b)
  return bases.map((base, i) => ({ base, file: join(dir, segmentName(base)), last: (bases[i + 1] ?? base) - 1 }))
}

/** Moves a damaged segment aside for an operator: where it went, or undefined when it was gone already. */
export async function quarantineSegment(seg: Segment, dir: string, fsync: FsyncPolicy): Promise<string | undefined> {
  let target: string | undefined = `${seg.file}.corrupt`
  for (let i = 1; await stat(target).then(() => true, () => false); i++) target = `${seg.file}.corrupt.${i}`
  try {
    await rename(seg.file, target)
    if (fsync !== 'none') await syncDir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    target = undefined
  }
  return target
}
