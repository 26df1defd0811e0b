/**
 * A write-ahead log of `TierWrite` batches in one directory, for write-behind: a
 * batch is acknowledged once its record is in the log (on disk, per the fsync
 * policy), flushed to Redis later, and replayed after a crash until the flush is
 * acknowledged back with `ack(seq)`.
 *
 * Directory layout
 *   wal-<seq, 16 digits>.log   segment files (wal_segments.ts) of records
 *                              (wal_record.ts). Appends go to one active segment;
 *                              it is closed once it reaches `segmentBytes` (or,
 *                              fully acknowledged, 1 MiB) and the next append starts
 *                              a new one. A segment is deleted once every record in
 *                              it is acknowledged.
 *   checkpoint                 the highest acknowledged sequence number (wal_checkpoint.ts).
 *   lock                       the pid of the process that has the log open (wal_lock.ts).
 *   wal-<seq>.log.corrupt      a segment found damaged on replay, kept for an operator
 *                              (never read or deleted by the log again).
 *   dead-letter.jsonl          writes write-behind gave up on (dead_letter.ts); not the log's.
 * Files and modes: wal_files.ts. Open and torn tails: wal_recover.ts. Segment
 * scanning: wal_scan.ts. Replay and damage: wal_replay.ts.
 *
 * Durability of an acknowledged append, per fsync policy: wal_group_commit.ts.
 */
import { rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join, resolve as resolvePath } from 'node:path'
import { InvalidOptionError } from '../errors.js'
import type { WalCorruptionError } from '../errors.js'
import type { TierWrite } from '../tiers/tier.js'
import { checkFsync } from './fsync.js'
import type { FsyncPolicy } from './fsync.js'
import { writeCheckpoint } from './wal_checkpoint.js'
import { createExclusive, secureDir, syncDir, writeFully } from './wal_files.js'
import { releaseLock, takeLock } from './wal_lock.js'
import { GroupCommit } from './wal_group_commit.js'
import type { PendingAppend } from './wal_group_commit.js'
import { encodeRecord, invalidWrites, sealRecord } from './wal_record.js'
import type { WalRecord } from './wal_record.js'
import { recoverLog } from './wal_recover.js'
import type { WalRecovery } from './wal_recover.js'
import { replaySegments } from './wal_replay.js'
import { segmentName } from './wal_segments.js'
import type { Segment } from './wal_segments.js'

export interface WalOptions {
  fsync: FsyncPolicy
  /** A segment that reaches this size is closed and the next append starts a new one. Default 64 MiB. */
  segmentBytes?: number
  /** Damage found on replay. Default: `process.emitWarning(err)`. */
  onCorruption?: (err: WalCorruptionError) => void
}

/** A fully acknowledged active segment at least this large is closed (and deleted) on `ack`. */
const RETIRE_BYTES = 1024 * 1024
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024

const openDirs = new Set<string>()

interface Active {
  seg: Segment
  fh: FileHandle
  size: number
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
  readonly #commits: GroupCommit
  #failed: Error | undefined
  #closed = false
  #closing: Promise<void> | undefined

  private constructor(dir: string, options: WalOptions) {
    this.dir = dir
    this.fsync = options.fsync
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
    this.#onCorruption = options.onCorruption
    this.#commits = new GroupCommit(this.fsync === 'always', (group) => this.#writeGroup(group))
  }

  /** Opens (creating) the log in `dir`: takes the directory's lock, cuts off a torn tail, reads the checkpoint. */
  static async open(dir: string, options: WalOptions): Promise<WriteAheadLog> {
    if (typeof dir !== 'string' || dir === '') throw new InvalidOptionError(`The write-ahead log needs a directory path (got ${String(dir)}).`)
    checkFsync(options?.fsync, 'fsync')
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
        await releaseLock(abs)
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
    const r = await recoverLog(this.dir, this.fsync)
    this.#acked = this.#ackPersisted = r.acked
    this.#checkpointFound = r.checkpointFound
    Object.assign(this.recovery, r.recovery)
    this.#nextSeq = r.maxSeq + 1
    this.#replayUpto = r.maxSeq
    this.#segments = r.segments
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
    const invalid = invalidWrites(writes)
    if (invalid) return Promise.reject(invalid)
    let record: Buffer
    try {
      record = encodeRecord(writes, Date.now())
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#commits.push(record)
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
    await writeCheckpoint(this.dir, value, this.fsync !== 'none')
    this.#ackPersisted = value
    await this.#deleteAcked()
    const act = this.#active
    if (act && act.seg.last <= value && act.size >= Math.min(RETIRE_BYTES, this.#segmentBytes) && !this.#commits.busy && !this.#closed) {
      await this.#retireActive()
    }
  }

  /**
   * The records that were in the log at open and are not acknowledged, oldest
   * first. Damage is reported (see wal_replay.ts) and replay goes on with the
   * next segment. Records appended after open are not included.
   */
  replay(): AsyncGenerator<WalRecord> {
    // Without a checkpoint nothing tells which records came before the oldest segment: start there.
    const from = this.#checkpointFound ? this.#acked + 1 : Math.max(this.#acked + 1, this.#segments[0]?.base ?? 0)
    return replaySegments(
      {
        dir: this.dir,
        fsync: this.fsync,
        segments: () => this.#segments,
        forget: (seg) => {
          this.#segments = this.#segments.filter((s) => s !== seg)
        },
        report: (err) => this.#report(err),
      },
      from,
      this.#replayUpto,
    )
  }

  #report(err: WalCorruptionError): void {
    this.corruptions.push(err)
    if (this.#onCorruption) this.#onCorruption(err)
    else process.emitWarning(err)
  }

  /** Writes what is pending, waits for checkpoint writes, fsyncs and closes the active segment, releases the lock. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true
      await this.#commits.flush()
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
      await releaseLock(this.dir)
      openDirs.delete(this.dir)
    })()
    return this.#closing
  }
}
