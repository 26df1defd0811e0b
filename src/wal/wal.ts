/**
 * A write-ahead log of `TierWrite` batches in one directory, for write-behind: a
 * batch is acknowledged once its record is in the log (on disk, per the fsync
 * policy), flushed to Redis later, and replayed after a crash until the flush is
 * acknowledged back with `ack(seq)`.
 *
 * Directory layout
 *   wal-<seq, 16 digits>.log   segment files; the name is the sequence number of the
 *                              segment's first record. Appends go to one active
 *                              segment; it is closed once it reaches `segmentBytes`
 *                              (or, fully acknowledged, 1 MiB) and the next append
 *                              starts a new one. A segment is deleted once
 *                              every record in it is acknowledged.
 *   checkpoint                 `{"version":1,"acked":<seq>}`: records up to this
 *                              sequence number are durable elsewhere. Replaced
 *                              atomically (written to checkpoint.tmp, fsynced,
 *                              renamed, directory fsynced; no fsyncs under 'none').
 *   lock                       the pid of the process that has the log open: a second
 *                              process is refused while that pid is alive (a pid lock:
 *                              it cannot tell processes in different pid namespaces
 *                              sharing a volume apart).
 *   wal-<seq>.log.corrupt      a segment found damaged on replay, kept for an operator
 *                              (never read or deleted by the log again).
 *   dead-letter.jsonl          writes write-behind gave up on (dead_letter.ts); not the log's.
 *
 * Files and modes (wal_files.ts): the directory is created 0700 and must be owned by
 * this user and not writable by group or others (else E_INVALID_OPTION); every file
 * is created 0600 with exclusive create and O_NOFOLLOW; segments and the checkpoint
 * must be regular files owned by this user to be read. Record format and scanning:
 * wal_format.ts.
 *
 * Record (little-endian)
 *   u32 length of payload | u32 CRC-32 (IEEE) of payload | payload
 *   payload = u64 seq | f64 append time (ms since epoch) | u32 count |
 *             count × ( u32 key length | key UTF-8 | f64 px (NaN = no expiry) |
 *                       u32 bytes length | bytes )
 * Sequence numbers start at 1 and are contiguous across segments: a record's seq
 * is its segment's first seq plus its index in the segment.
 *
 * Durability of an acknowledged append (the promise `append` returns resolved):
 *   'always'  one write + fdatasync per append: the record is on disk. Survives a
 *             process crash and an OS crash / power loss.
 *   'batch'   group commit: the appends of one tick (and those that arrive while a
 *             write is in flight) go out in one write and share one fdatasync;
 *             each append resolves after that fdatasync. Same guarantee as
 *             'always' (on disk when acknowledged), fewer fsyncs under load.
 *   'none'    one write per group, never fsynced (except on close): the record is
 *             in the OS page cache when acknowledged. Survives a crash of the
 *             process (SIGKILL, OOM kill), NOT an OS crash or power loss: then the
 *             writes of roughly the last 30 s (Linux dirty_expire_centisecs,
 *             default 3000) can be lost, and a segment may lose its tail or whole
 *             records, which replay reports as damage or missing records.
 *   New segment files and checkpoint renames are fsynced with their directory
 *   under 'always' and 'batch'.
 *
 * Recovery on open (and replay)
 *   - Torn tail: the newest segment ends in a partial record (a crash mid-append:
 *     short header, a length running past the end, a CRC mismatch, zero fill) with
 *     no valid record after it. The partial record was never acknowledged under
 *     'always'/'batch'; it is cut off (the file is truncated) and not replayed.
 *     `recovery.tornTailBytes` says how many bytes went. (A bit flipped on disk in
 *     the very last record looks the same and is cut the same way.)
 *   - Damage: a bad record anywhere else, a bad record followed by a valid one, a
 *     record with a valid CRC but a bad structure or sequence number. Replay yields
 *     the segment's records before the damage, then stops reading that segment,
 *     reports a `WalCorruptionError` (file, offset, bytes not replayed, the
 *     sequence numbers lost), renames the segment to `<name>.corrupt` (kept for an
 *     operator, never deleted) and goes on with the next segment. Replay never
 *     guesses record boundaries past damage, so it never replays garbage, and it
 *     never skips data without reporting it: records missing between segments
 *     (a deleted file, a tail lost to an OS crash under 'none') are reported the
 *     same way. Reports go to `onCorruption`, or by default to
 *     `process.emitWarning`, and are kept in `corruptions`. (After an OS crash,
 *     unsynced pages can reach the disk out of order; a group that was never
 *     acknowledged may then leave a hole before a complete record, which is
 *     reported as damage too: a false alarm, never a silent loss.)
 *   - A missing or unreadable checkpoint means "nothing acknowledged": every
 *     record still in a segment is replayed (at least once, never lost).
 */
import { open as fsOpen, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join, resolve as resolvePath } from 'node:path'
import { CacheError, InvalidOptionError } from '../errors.js'
import type { TierWrite } from '../tiers/tier.js'
import { encodeRecord, scanSegment, sealRecord } from './wal_format.js'
import type { Damage, WalRecord } from './wal_format.js'
import { checkOwnFile, createExclusive, createTemp, secureDir, syncDir, takeLock, writeFully } from './wal_files.js'

export { crc32, crc32Fallback, decodePayload, encodeRecord, scanSegment, sealRecord } from './wal_format.js'
export type { SegmentScan, WalRecord } from './wal_format.js'

export type FsyncPolicy = 'always' | 'batch' | 'none'
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'batch', 'none']

export interface WalOptions {
  fsync: FsyncPolicy
  /** A segment that reaches this size is closed and the next append starts a new one. Default 64 MiB. */
  segmentBytes?: number
  /** Damage found on replay. Default: `process.emitWarning(err)`. */
  onCorruption?: (err: WalCorruptionError) => void
}

/** What `open` found and repaired. */
export interface WalRecovery {
  /** Bytes of a torn last record cut off the newest segment (0 = none). */
  tornTailBytes: number
  tornTailFile: string | undefined
  /** The checkpoint file existed but could not be read: everything present is replayed. */
  checkpointUnreadable: boolean
}

/**
 * Damage in the write-ahead log found on replay: records in it were not replayed.
 * Not thrown; reported through `onCorruption` (and by a cache on its `'error'`
 * event and to its `onError` option). Code E_CORRUPT_ENTRY.
 */
export class WalCorruptionError extends CacheError {
  constructor(
    message: string,
    /** The damaged segment (or the log directory, for records missing between segments). */
    readonly file: string,
    /** Byte offset of the first bad record in `file`; undefined for missing records. */
    readonly offset: number | undefined,
    /** Bytes of `file` from `offset` on that were not replayed. */
    readonly bytesSkipped: number,
    /** Sequence numbers known to be lost, when they can be told. */
    readonly lostSeqs: { from: number; to: number } | undefined,
    /** Where the damaged segment was moved to (kept for an operator). */
    readonly quarantinedAs: string | undefined,
  ) {
    super('E_CORRUPT_ENTRY', message)
  }
}

// ---------------------------------------------------------------- files

const SEGMENT_RE = /^wal-(\d{16})\.log$/
const segmentName = (base: number): string => `wal-${String(base).padStart(16, '0')}.log`
const CHECKPOINT = 'checkpoint'
const CHECKPOINT_TMP = 'checkpoint.tmp'
const LOCK = 'lock'
/** A fully acknowledged active segment at least this large is closed (and deleted) on `ack`. */
const RETIRE_BYTES = 1024 * 1024
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024

// ---------------------------------------------------------------- the log

const openDirs = new Set<string>()

interface Segment {
  base: number
  file: string
  /** Last seq in the segment (base - 1 when empty). */
  last: number
  /** The newest segment found at open (its torn tail was already cut off). */
  newestAtOpen?: boolean
}

interface Active {
  seg: Segment
  fh: FileHandle
  size: number
}

interface PendingAppend {
  record: Buffer
  resolve(seq: number): void
  reject(err: unknown): void
}

export class WriteAheadLog {
  readonly dir: string
  readonly fsync: FsyncPolicy
  readonly recovery: WalRecovery = { tornTailBytes: 0, tornTailFile: undefined, checkpointUnreadable: false }
  /** Damage reported by `replay` so far. */
  readonly corruptions: WalCorruptionError[] = []
  readonly #segmentBytes: number
  readonly #onCorruption: ((err: WalCorruptionError) => void) | undefined
  /** Closed segments, oldest first. */
  #segments: Segment[] = []
  #active: Active | undefined
  #nextSeq = 1
  #acked = 0
  #ackPersisted = 0
  #ackChain: Promise<void> = Promise.resolve()
  /** Records up to this seq were in the log at open: what `replay` covers. */
  #replayUpto = 0
  /** A readable checkpoint was found at open (without one, the oldest segment is where replay starts). */
  #checkpointFound = false
  #pending: PendingAppend[] = []
  #scheduled = false
  #pumping: Promise<void> | undefined
  #failed: Error | undefined
  #closed = false
  #closing: Promise<void> | undefined

  private constructor(dir: string, options: WalOptions) {
    this.dir = dir
    this.fsync = options.fsync
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
    this.#onCorruption = options.onCorruption
  }

  /** Opens (creating) the log in `dir`: takes the directory's lock, cuts off a torn tail, reads the checkpoint. */
  static async open(dir: string, options: WalOptions): Promise<WriteAheadLog> {
    if (typeof dir !== 'string' || dir === '') throw new InvalidOptionError(`The write-ahead log needs a directory path (got ${String(dir)}).`)
    if (!FSYNC_POLICIES.includes(options?.fsync)) throw new InvalidOptionError(`fsync must be 'always', 'batch' or 'none' (got ${String(options?.fsync)}).`)
    const sb = options.segmentBytes
    if (sb !== undefined && (!Number.isInteger(sb) || sb < 1)) throw new InvalidOptionError(`segmentBytes must be a positive integer (got ${String(sb)}).`)
    const abs = resolvePath(dir)
    if (openDirs.has(abs)) throw new InvalidOptionError(`The write-ahead log in ${abs} is already open in this process; close it first.`)
    openDirs.add(abs)
    try {
      await secureDir(abs)
      await takeLock(abs)
      const wal = new WriteAheadLog(abs, options)
      try {
        await wal.#recover()
      } catch (err) {
        await rm(join(abs, LOCK), { force: true })
        throw err
      }
      return wal
    } catch (err) {
      openDirs.delete(abs)
      throw err
    }
  }

  /** Sequence number the next append gets. */
  get nextSeq(): number {
    return this.#nextSeq
  }

  /** Highest acknowledged sequence number. */
  get ackedSeq(): number {
    return this.#acked
  }

  /** Segment files currently in use (closed ones and the active one). */
  get segmentFiles(): string[] {
    return [...this.#segments.map((s) => s.file), ...(this.#active ? [this.#active.seg.file] : [])]
  }

  async #recover(): Promise<void> {
    const names = await readdir(this.dir)
    // Only files of this user are read: a segment or checkpoint owned by anyone else (or a symlink) is refused.
    for (const n of names) if (SEGMENT_RE.test(n) || n === CHECKPOINT) await checkOwnFile(join(this.dir, n))
    const cp = names.includes(CHECKPOINT) ? await readFile(join(this.dir, CHECKPOINT), 'utf8').catch(() => '') : undefined
    this.#checkpointFound = cp !== undefined
    if (cp !== undefined) {
      let acked: unknown
      try {
        acked = (JSON.parse(cp) as { acked?: unknown }).acked
      } catch {
        acked = undefined
      }
      if (typeof acked === 'number' && Number.isSafeInteger(acked) && acked >= 0) this.#acked = acked
      else {
        this.recovery.checkpointUnreadable = true
        this.#checkpointFound = false
      }
    }
    this.#ackPersisted = this.#acked
    await rm(join(this.dir, CHECKPOINT_TMP), { force: true })

    const bases = names
      .map((n) => SEGMENT_RE.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b)
    const segments: Segment[] = bases.map((base, i) => ({ base, file: join(this.dir, segmentName(base)), last: (bases[i + 1] ?? base) - 1 }))
    let maxSeq = this.#acked
    const newest = segments.at(-1)
    if (newest) {
      newest.newestAtOpen = true
      const buf = await readFile(newest.file)
      const scan = scanSegment(buf, newest.base, true)
      // A damaged segment stays until replay has reported it, even if its good records are acknowledged.
      newest.last = scan.damage && !scan.damage.torn ? scan.maxSeq : newest.base - 1 + scan.records.length
      maxSeq = Math.max(maxSeq, newest.base - 1, scan.maxSeq)
      if (scan.damage?.torn) {
        const fh = await fsOpen(newest.file, 'r+')
        try {
          await fh.truncate(scan.validEnd)
          if (this.fsync !== 'none') await fh.sync()
        } finally {
          await fh.close()
        }
        this.recovery.tornTailBytes = buf.length - scan.validEnd
        this.recovery.tornTailFile = newest.file
      }
      if (scan.validEnd === 0 && !(scan.damage && !scan.damage.torn)) {
        // Empty (created just before a crash, or cut to nothing): nothing to replay.
        await rm(newest.file, { force: true })
        segments.pop()
      }
    }
    this.#nextSeq = maxSeq + 1
    this.#replayUpto = maxSeq
    this.#segments = segments
    await this.#deleteAcked()
  }

  /**
   * Appends one batch as one record. Resolves with its sequence number once the
   * record is written (and fdatasynced, unless fsync is 'none'); rejects when it
   * could not be written, and then nothing of it will be replayed.
   */
  append(writes: readonly TierWrite[]): Promise<number> {
    if (this.#closed) return Promise.reject(new Error(`The write-ahead log in ${this.dir} is closed.`))
    if (this.#failed) return Promise.reject(this.#failed)
    if (!Array.isArray(writes)) return Promise.reject(new InvalidOptionError('append takes an array of { key, bytes, px } writes.'))
    for (const w of writes) {
      if (typeof w !== 'object' || w === null || typeof w.key !== 'string' || !(w.bytes instanceof Uint8Array)) {
        return Promise.reject(new InvalidOptionError('Each write must be { key: string, bytes: Buffer, px: number | undefined }.'))
      }
      if (w.px !== undefined && !(typeof w.px === 'number' && w.px > 0 && w.px !== Infinity)) {
        return Promise.reject(new InvalidOptionError(`px must be a positive number of milliseconds or undefined (got ${String(w.px)} for ${w.key}).`))
      }
    }
    let record: Buffer
    try {
      record = encodeRecord(writes, Date.now())
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise<number>((resolve, reject) => {
      this.#pending.push({ record, resolve, reject })
      this.#schedule()
    })
  }

  #schedule(): void {
    if (this.#scheduled || this.#pumping) return
    this.#scheduled = true
    // Everything appended in this tick joins the first group.
    setImmediate(() => {
      this.#scheduled = false
      void this.#pump()
    })
  }

  #pump(): Promise<void> {
    if (this.#pumping) return this.#pumping
    if (this.#pending.length === 0) return Promise.resolve()
    const run = async (): Promise<void> => {
      while (this.#pending.length > 0) {
        const group = this.fsync === 'always' ? this.#pending.splice(0, 1) : this.#pending.splice(0)
        await this.#writeGroup(group)
      }
    }
    this.#pumping = run().finally(() => {
      this.#pumping = undefined
      // Appends made between the last group and this callback.
      if (this.#pending.length > 0) this.#schedule()
    })
    return this.#pumping
  }

  async #writeGroup(group: PendingAppend[]): Promise<void> {
    try {
      if (this.#failed) throw this.#failed
      const act = await this.#ensureActive()
      const first = this.#nextSeq
      group.forEach((p, i) => sealRecord(p.record, first + i))
      const data = group.length === 1 ? (group[0] as PendingAppend).record : Buffer.concat(group.map((p) => p.record))
      try {
        await writeFully(act.fh, data, act.size)
      } catch (err) {
        // Part of the group may be in the file: cut it off so the next record starts at a boundary.
        await act.fh.truncate(act.size).catch((e: Error) => {
          this.#failed = e
        })
        throw err
      }
      if (this.fsync !== 'none') {
        try {
          await act.fh.datasync()
        } catch (err) {
          // After a failed fsync the state of the page cache is unknown: stop appending.
          this.#failed = err as Error
          throw err
        }
      }
      act.size += data.length
      act.seg.last = first + group.length - 1
      this.#nextSeq = first + group.length
      group.forEach((p, i) => p.resolve(first + i))
      if (act.size >= this.#segmentBytes) await this.#retireActive()
    } catch (err) {
      for (const p of group) p.reject(err)
    }
  }

  async #ensureActive(): Promise<Active> {
    if (this.#active) return this.#active
    const base = this.#nextSeq
    const file = join(this.dir, segmentName(base))
    const fh = await createExclusive(file)
    if (this.fsync !== 'none') await syncDir(this.dir)
    this.#active = { seg: { base, file, last: base - 1 }, fh, size: 0 }
    return this.#active
  }

  async #retireActive(): Promise<void> {
    const act = this.#active
    if (!act) return
    this.#active = undefined
    this.#segments.push(act.seg)
    await act.fh.close()
    await this.#deleteAcked()
  }

  async #deleteAcked(): Promise<void> {
    const done = this.#segments.filter((s) => s.last <= this.#ackPersisted)
    if (done.length === 0) return
    this.#segments = this.#segments.filter((s) => !done.includes(s))
    for (const s of done) await rm(s.file, { force: true })
  }

  /**
   * Records up to `uptoSeq` are durable elsewhere: persists the position in the
   * checkpoint (atomically) and deletes segments every record of which is
   * acknowledged. Concurrent acks coalesce; acks never go backwards.
   */
  ack(uptoSeq: number): Promise<void> {
    if (typeof uptoSeq !== 'number' || !Number.isSafeInteger(uptoSeq)) return Promise.reject(new InvalidOptionError(`ack takes a sequence number (got ${String(uptoSeq)}).`))
    if (this.#closed) return Promise.reject(new Error(`The write-ahead log in ${this.dir} is closed.`))
    const upto = Math.min(uptoSeq, this.#nextSeq - 1)
    if (upto > this.#acked) this.#acked = upto
    const p = this.#ackChain.then(() => this.#persistAck())
    this.#ackChain = p.catch(() => {})
    return p
  }

  async #persistAck(): Promise<void> {
    const value = this.#acked
    if (value === this.#ackPersisted) return
    const sync = this.fsync !== 'none'
    const tmp = join(this.dir, CHECKPOINT_TMP)
    const fh = await createTemp(tmp)
    try {
      await fh.writeFile(`${JSON.stringify({ version: 1, acked: value })}\n`)
      if (sync) await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, join(this.dir, CHECKPOINT))
    if (sync) await syncDir(this.dir)
    this.#ackPersisted = value
    await this.#deleteAcked()
    const act = this.#active
    if (act && act.seg.last <= value && act.size >= Math.min(RETIRE_BYTES, this.#segmentBytes) && !this.#pumping && !this.#closed) {
      await this.#retireActive()
    }
  }

  /**
   * The records that were in the log at open and are not acknowledged, oldest
   * first. Damage is reported (see the module comment) and replay goes on with
   * the next segment. Records appended after open are not included.
   */
  async *replay(): AsyncGenerator<WalRecord> {
    const upto = this.#replayUpto
    // Without a checkpoint nothing tells which records came before the oldest segment: start there.
    let expected = this.#checkpointFound ? this.#acked + 1 : Math.max(this.#acked + 1, this.#segments[0]?.base ?? 0)
    for (const seg of [...this.#segments]) {
      if (seg.base > upto) break
      if (!this.#segments.includes(seg) || seg.last < expected) continue
      let buf: Buffer
      try {
        buf = await readFile(seg.file)
      } catch (err) {
        // Deleted since the check above: every record in it was acknowledged meanwhile.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !this.#segments.includes(seg)) continue
        throw err
      }
      const scan = scanSegment(buf, seg.base, seg.newestAtOpen === true)
      for (const rec of scan.records) {
        if (rec.seq < expected) continue
        if (rec.seq > upto) break
        if (rec.seq > expected) this.#reportMissing(expected, rec.seq - 1)
        yield rec
        expected = rec.seq + 1
      }
      if (scan.damage && !scan.damage.torn) {
        const next = this.#segments[this.#segments.indexOf(seg) + 1]
        const lostTo = next ? next.base - 1 : upto
        await this.#quarantine(seg, buf, scan.damage, expected <= lostTo ? { from: expected, to: lostTo } : undefined)
        expected = Math.max(expected, lostTo + 1)
      }
    }
    if (expected <= upto) this.#reportMissing(expected, upto)
  }

  #report(err: WalCorruptionError): void {
    this.corruptions.push(err)
    if (this.#onCorruption) this.#onCorruption(err)
    else process.emitWarning(err)
  }

  #reportMissing(from: number, to: number): void {
    const n = to - from + 1
    this.#report(
      new WalCorruptionError(
        `Write-ahead log ${this.dir}: ${n} record${n === 1 ? '' : 's'} (seq ${from}..${to}) missing between segments and not replayed; a segment file was removed or lost its tail (an OS crash under fsync 'none'?).`,
        this.dir,
        undefined,
        0,
        { from, to },
        undefined,
      ),
    )
  }

  async #quarantine(seg: Segment, buf: Buffer, damage: Damage, lost: { from: number; to: number } | undefined): Promise<void> {
    let target: string | undefined = `${seg.file}.corrupt`
    for (let i = 1; await stat(target).then(() => true, () => false); i++) target = `${seg.file}.corrupt.${i}`
    try {
      await rename(seg.file, target)
      if (this.fsync !== 'none') await syncDir(this.dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      target = undefined
    }
    this.#segments = this.#segments.filter((s) => s !== seg)
    const skipped = buf.length - damage.offset
    this.#report(
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

  /** Writes what is pending, waits for checkpoint writes, fsyncs and closes the active segment, releases the lock. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true
      while (this.#pending.length > 0 || this.#pumping) await this.#pump()
      await this.#ackChain
      const act = this.#active
      this.#active = undefined
      if (act) {
        try {
          if (!this.#failed) await act.fh.sync()
        } finally {
          await act.fh.close()
        }
        if (act.size === 0) await rm(act.seg.file, { force: true })
        else this.#segments.push(act.seg)
      }
      // Fully acknowledged segments (the active one included) are not needed by the next open.
      await this.#deleteAcked()
      await rm(join(this.dir, LOCK), { force: true })
      openDirs.delete(this.dir)
    })()
    return this.#closing
  }
}
