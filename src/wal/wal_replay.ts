/**
 * Replay: the records that were in the write-ahead log at open and are not
 * acknowledged, oldest first.
 *
 * Damage: a bad record anywhere but a torn tail (wal_recover.ts), a bad record
 * followed by a valid one, a record with a valid CRC but a bad structure or
 * sequence number. Replay yields the segment's records before the damage, then
 * stops reading that segment, reports a `WalCorruptionError` (file, offset, bytes
 * not replayed, the sequence numbers lost), renames the segment to `<name>.corrupt`
 * (kept for an operator, never deleted) and goes on with the next segment. Replay
 * never guesses record boundaries past damage, so it never replays garbage, and it
 * never skips data without reporting it: records missing between segments (a
 * deleted file, a tail lost to an OS crash under 'none') are reported the same way.
 * (After an OS crash, unsynced pages can reach the disk out of order; a group that
 * was never acknowledged may then leave a hole before a complete record, which is
 * reported as damage too: a false alarm, never a silent loss.)
 */
import { readFile } from 'node:fs/promises'
import { WalCorruptionError } from '../errors.js'
import type { FsyncPolicy } from './fsync.js'
import type { WalRecord } from './wal_record.js'
import { scanSegment } from './wal_scan.js'
import type { Damage } from './wal_scan.js'
import { quarantineSegment } from './wal_segments.js'
import type { Segment } from './wal_segments.js'

/** What replay needs of the log: its closed segments change while it runs (acks delete them). */
export interface ReplaySource {
  readonly dir: string
  readonly fsync: FsyncPolicy
  /** The log's closed segments now, oldest first. */
  segments(): readonly Segment[]
  /** Drops a quarantined segment from the log. */
  forget(seg: Segment): void
  /** Reports damage (kept, and told to `onCorruption` or `process.emitWarning`). */
  report(err: WalCorruptionError): void
}

/** Yields the records with seq `from`..`upto` still in the log's segments, reporting what is missing or damaged. */
export async function* replaySegments(log: ReplaySource, from: number, upto: number): AsyncGenerator<WalRecord> {
  let expected = from
  for (const seg of [...log.segments()]) {
    if (seg.base > upto) break
    if (!log.segments().includes(seg) || seg.last < expected) continue
    let buf: Buffer
    try {
      buf = await readFile(seg.file)
    } catch (err) {
      // Deleted since the check above: every record in it was acknowledged meanwhile.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !log.segments().includes(seg)) continue
      throw err
    }
    const scan = scanSegment(buf, seg.base, seg.newestAtOpen === true)
    for (const rec of scan.records) {
      if (rec.seq < expected) continue
      if (rec.seq > upto) break
      if (rec.seq > expected) reportMissing(log, expected, rec.seq - 1)
      yield rec
      expected = rec.seq + 1
    }
    if (scan.damage && !scan.damage.torn) {
      const segments = log.segments()
      const next = segments[segments.indexOf(seg) + 1]
      const lostTo = next ? next.base - 1 : upto
      await quarantine(log, seg, buf, scan.damage, expected <= lostTo ? { from: expected, to: lostTo } : undefined)
      expected = Math.max(expected, lostTo + 1)
    }
  }
  if (expected <= upto) reportMissing(log, expected, upto)
}

function reportMissing(log: ReplaySource, from: number, to: number): void {
  const n = to - from + 1
  log.report(
    new WalCorruptionError(
      `Write-ahead log ${log.dir}: ${n} record${n === 1 ? '' : 's'} (seq ${from}..${to}) missing between segments and not replayed; a segment file was removed or lost its tail (an OS crash under fsync 'none'?).`,
      log.dir,
      undefined,
      0,
      { from, to },
      undefined,
    ),
  )
}

async function quarantine(log: ReplaySource, seg: Segment, buf: Buffer, damage: Damage, lost: { from: number; to: number } | undefined): Promise<void> {
  const target = await quarantineSegment(seg, log.dir, log.fsync)
  log.forget(seg)
  const skipped = buf.length - damage.offset
  log.report(
    new WalCorruptionError(
      `Write-ahead log segment ${seg.file} is damaged at byte ${damage.offset} (${damage.reason}): the ${skipped} bytes from there on were not replayed` +
        (lost ? ` (records seq ${lost.from}..${lost.to})` : '') +
        (target ? `. The segment was moved to ${target} for inspection` : '') +
        '; replay went on with the next segment.',
      seg.file,
      damage.offset,
      skipped,
      lost,
      target,
    ),
  )
}
