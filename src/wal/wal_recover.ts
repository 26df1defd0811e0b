/**
 * What the write-ahead log does on open, before anything is appended or replayed.
 *
 *   - Only files of this user are read: a segment or checkpoint owned by anyone
 *     else (or a symlink) is refused (E_INVALID_OPTION).
 *   - The checkpoint is read (wal_checkpoint.ts).
 *   - Torn tail: the newest segment ends in a partial record (a crash mid-append:
 *     short header, a length running past the end, a CRC mismatch, zero fill) with
 *     no valid record after it. The partial record was never acknowledged under
 *     'always'/'batch'; it is cut off (the file is truncated) and not replayed.
 *     `recovery.tornTailBytes` says how many bytes went. (A bit flipped on disk in
 *     the very last record looks the same and is cut the same way.) Damage of any
 *     other kind is left for replay to report (wal_replay.ts).
 *   - A newest segment left empty (created just before a crash, or cut to nothing)
 *     is deleted.
 */
import { open as fsOpen, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { FsyncPolicy } from './fsync.js'
import { CHECKPOINT, readCheckpoint } from './wal_checkpoint.js'
import { checkOwnFile } from './wal_files.js'
import { scanSegment } from './wal_scan.js'
import { isSegmentName, segmentsIn } from './wal_segments.js'
import type { Segment } from './wal_segments.js'

/** What `open` found and repaired. */
export interface WalRecovery {
  /** Bytes of a torn last record cut off the newest segment (0 = none). */
  tornTailBytes: number
  tornTailFile: string | undefined
  /** The checkpoint file existed but could not be read: everything present is replayed. */
  checkpointUnreadable: boolean
}

export interface Recovered {
  /** Highest acknowledged seq per the checkpoint (0 without a readable one). */
  acked: number
  /** A readable checkpoint was found (without one, the oldest segment is where replay starts). */
  checkpointFound: boolean
  recovery: WalRecovery
  /** The segments in the directory, oldest first; the newest is marked `newestAtOpen`. */
  segments: Segment[]
  /** Highest seq in the log (or acknowledged): the next append gets the one after. */
  maxSeq: number
}

/** Reads the log in `dir` as a crash left it and cuts off a torn tail. */
export async function recoverLog(dir: string, fsync: FsyncPolicy): Promise<Recovered> {
  const names = await readdir(dir)
  for (const n of names) if (isSegmentName(n) || n === CHECKPOINT) await checkOwnFile(join(dir, n))
  const cp = await readCheckpoint(dir, names)
  const recovery: WalRecovery = { tornTailBytes: 0, tornTailFile: undefined, checkpointUnreadable: cp.unreadable }
  const out: Recovered = { acked: cp.acked, checkpointFound: cp.found, recovery, segments: segmentsIn(dir, names), maxSeq: cp.acked }
  const segments = out.segments
  const newest = segments.at(-1)
  if (newest) {
    newest.newestAtOpen = true
    const buf = await readFile(newest.file)
    const scan = scanSegment(buf, newest.base, true)
    // A damaged segment stays until replay has reported it, even if its good records are acknowledged.
    newest.last = scan.damage && !scan.damage.torn ? scan.maxSeq : newest.base - 1 + scan.records.length
    out.maxSeq = Math.max(out.maxSeq, newest.base - 1, scan.maxSeq)
    if (scan.damage?.torn) {
      const fh = await fsOpen(newest.file, 'r+')
      try {
        await fh.truncate(scan.validEnd)
        if (fsync !== 'none') await fh.sync()
      } finally {
        await fh.close()
      }
      recovery.tornTailBytes = buf.length - scan.validEnd
      recovery.tornTailFile = newest.file
    }
    if (scan.validEnd === 0 && !(scan.damage && !scan.damage.torn)) {
      // Empty (created just before a crash, or cut to nothing): nothing to replay.
      await rm(newest.file, { force: true })
      segments.pop()
    }
  }
  return out
}
