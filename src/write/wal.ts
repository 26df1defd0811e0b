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
import { mkdir, open as fsOpen, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join, resolve as resolvePath } from 'node:path'
import * as zlib from 'node:zlib'
import { InvalidOptionError, ValueTooLargeError } from '../errors.js'
import type { TierWrite } from '../tier.js'

export type FsyncPolicy = 'always' | 'batch' | 'none'
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'batch', 'none']

export interface WalOptions {
  fsync: FsyncPolicy
  /** A segment that reaches this size is closed and the next append starts a new one. Default 64 MiB. */
  segmentBytes?: number
  /** Damage found on replay. Default: `process.emitWarning(err)`. */
  onCorruption?: (err: WalCorruptionError) => void
}

export interface WalRecord {
  seq: number
  /** When the batch was appended (ms since the epoch), so TTLs can be shortened on replay. */
  time: number
  writes: TierWrite[]
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
 * Not thrown; reported through `onCorruption`.
 */
export class WalCorruptionError extends Error {
  readonly code = 'E_WAL_CORRUPT'
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
    super(message)
    this.name = 'WalCorruptionError'
  }
}

// ---------------------------------------------------------------- CRC-32

let crcTable: Int32Array | undefined
/** Table-driven CRC-32 (IEEE 802.3, as zlib), for Node versions before 20.15 which lack zlib.crc32. */
export function crc32Fallback(data: Uint8Array, value = 0): number {
  if (!crcTable) {
    crcTable = new Int32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      crcTable[n] = c
    }
  }
  let c = ~value
  for (let i = 0; i < data.length; i++) c = (crcTable[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return ~c >>> 0
}
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32
/** CRC-32 (IEEE): zlib's native one when this Node has it (20.15+), else a table-driven one. */
export const crc32: (data: Uint8Array, value?: number) => number = nativeCrc32 ?? crc32Fallback

// ---------------------------------------------------------------- record encoding

const HEADER = 8 // u32 length + u32 crc
const PAYLOAD_FIXED = 20 // u64 seq + f64 time + u32 count
const MAX_PAYLOAD = 0xffff_ffff
const TWO_32 = 2 ** 32

/** A whole record (header included) with its seq and CRC still to be filled in by `sealRecord`. */
export function encodeRecord(writes: readonly TierWrite[], time: number): Buffer {
  let size = HEADER + PAYLOAD_FIXED
  const keyLens = new Array<number>(writes.length)
  for (let i = 0; i < writes.length; i++) {
    const w = writes[i] as TierWrite
    const kl = Buffer.byteLength(w.key, 'utf8')
    keyLens[i] = kl
    size += 4 + kl + 8 + 4 + w.bytes.length
  }
  if (size - HEADER > MAX_PAYLOAD) {
    throw new ValueTooLargeError(`A write-ahead log record holds at most 4 GiB; this batch of ${writes.length} writes encodes to ${size - HEADER} bytes. Enqueue it in smaller batches.`)
  }
  const buf = Buffer.allocUnsafe(size)
  buf.writeUInt32LE(size - HEADER, 0)
  let o = HEADER + 8
  o = buf.writeDoubleLE(time, o)
  o = buf.writeUInt32LE(writes.length, o)
  for (let i = 0; i < writes.length; i++) {
    const w = writes[i] as TierWrite
    const kl = keyLens[i] as number
    o = buf.writeUInt32LE(kl, o)
    o += buf.write(w.key, o, kl, 'utf8')
    o = buf.writeDoubleLE(w.px === undefined ? NaN : w.px, o)
    o = buf.writeUInt32LE(w.bytes.length, o)
    o += Buffer.from(w.bytes.buffer, w.bytes.byteOffset, w.bytes.length).copy(buf, o)
  }
  return buf
}

/** Stamps the sequence number and the CRC into a record made by `encodeRecord`. */
export function sealRecord(record: Buffer, seq: number): void {
  record.writeUInt32LE(seq % TWO_32, HEADER)
  record.writeUInt32LE(Math.floor(seq / TWO_32), HEADER + 4)
  record.writeUInt32LE(crc32(record.subarray(HEADER)), 4)
}

function readSeq(buf: Buffer, at: number): number {
  return (buf.readUInt32LE(at) as number) + (buf.readUInt32LE(at + 4) as number) * TWO_32
}

/** The record in `payload` (CRC already checked), or a reason it is malformed. Bytes are views into `payload`. */
export function decodePayload(payload: Buffer): WalRecord | string {
  if (payload.length < PAYLOAD_FIXED) return 'payload shorter than its fixed fields'
  const seq = readSeq(payload, 0)
  const time = payload.readDoubleLE(8)
  const count = payload.readUInt32LE(16)
  let o = PAYLOAD_FIXED
  const writes: TierWrite[] = []
  for (let i = 0; i < count; i++) {
    if (o + 4 > payload.length) return `write ${i} of ${count} runs past the payload`
    const kl = payload.readUInt32LE(o)
    o += 4
    if (o + kl + 12 > payload.length) return `write ${i} of ${count} runs past the payload`
    const key = payload.toString('utf8', o, o + kl)
    o += kl
    const pxRaw = payload.readDoubleLE(o)
    o += 8
    const bl = payload.readUInt32LE(o)
    o += 4
    if (o + bl > payload.length) return `write ${i} of ${count} runs past the payload`
    writes.push({ key, bytes: payload.subarray(o, o + bl), px: Number.isNaN(pxRaw) ? undefined : pxRaw })
    o += bl
  }
  if (o !== payload.length) return `${payload.length - o} bytes left over after ${count} writes`
  return { seq, time, writes }
}

// ---------------------------------------------------------------- segment scanning

interface Damage {
  offset: number
  reason: string
  /** A partial last record of the newest segment (a crash mid-append), not damage. */
  torn: boolean
}

export interface SegmentScan {
  records: WalRecord[]
  /** End of the last good record. */
  validEnd: number
  damage: Damage | undefined
  /** Highest sequence number seen, good records and any valid record found past damage. */
  maxSeq: number
}

/**
 * Looks for CRC-valid records with seq >= minSeq anywhere at or after `from`
 * (only to tell damage from a torn tail, and which numbers are taken): the
 * highest seq found, or -1.
 */
function findValidRecords(buf: Buffer, from: number, minSeq: number): number {
  let max = -1
  for (let p = from; p + HEADER + PAYLOAD_FIXED <= buf.length; ) {
    const len = buf.readUInt32LE(p)
    if (len >= PAYLOAD_FIXED && p + HEADER + len <= buf.length) {
      const seq = readSeq(buf, p + HEADER)
      if (seq >= minSeq && seq <= Number.MAX_SAFE_INTEGER && crc32(buf.subarray(p + HEADER, p + HEADER + len)) === buf.readUInt32LE(p + 4)) {
        max = Math.max(max, seq)
        p += HEADER + len
        continue
      }
    }
    p++
  }
  return max
}

/**
 * Parses a segment. A bad record in the newest segment (`newest`) with no valid
 * record anywhere after it is a torn tail; any other bad record is damage.
 */
export function scanSegment(buf: Buffer, base: number, newest: boolean): SegmentScan {
  const records: WalRecord[] = []
  let o = 0
  let expected = base
  let reason: string | undefined
  let tearable = true
  let maxSeq = base - 1
  while (o < buf.length) {
    if (buf.length - o < HEADER) {
      reason = `a record header cut short (${buf.length - o} of ${HEADER} bytes)`
      break
    }
    const len = buf.readUInt32LE(o)
    if (len < PAYLOAD_FIXED) {
      reason = `a record length of ${len} (at least ${PAYLOAD_FIXED})`
      break
    }
    if (o + HEADER + len > buf.length) {
      reason = `a record of ${len} bytes running past the end of the file (${buf.length - o - HEADER} left)`
      break
    }
    const payload = buf.subarray(o + HEADER, o + HEADER + len)
    if (crc32(payload) !== buf.readUInt32LE(o + 4)) {
      reason = 'a CRC-32 mismatch'
      break
    }
    const rec = decodePayload(payload)
    tearable = false // a record with a valid CRC is not a torn write
    if (typeof rec === 'string') {
      reason = `a malformed record (${rec})`
      break
    }
    maxSeq = Math.max(maxSeq, rec.seq)
    if (rec.seq !== expected) {
      reason = `sequence number ${rec.seq} where ${expected} was expected`
      break
    }
    tearable = true
    records.push(rec)
    expected++
    o += HEADER + len
  }
  let damage: Damage | undefined
  if (reason !== undefined) {
    const later = findValidRecords(buf, o + 1, expected)
    maxSeq = Math.max(maxSeq, later)
    damage = { offset: o, reason, torn: newest && tearable && later < 0 }
  }
  return { records, validEnd: o, damage, maxSeq }
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

async function syncDir(dir: string): Promise<void> {
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

async function writeFully(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done)
    if (bytesWritten <= 0) throw new Error(`write to the write-ahead log made no progress at ${position + done}`)
    done += bytesWritten
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const openDirs = new Set<string>()

async function takeLock(dir: string): Promise<void> {
  const file = join(dir, LOCK)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx' })
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

// ---------------------------------------------------------------- the log

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
      await mkdir(abs, { recursive: true })
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
    const fh = await fsOpen(file, 'wx')
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
    const fh = await fsOpen(tmp, 'w')
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
