/**
 * The write-behind dead-letter file: writes the log could not deliver, kept for an
 * operator instead of being retried forever or dropped silently.
 *
 * `<dir>/dead-letter.jsonl`, beside the log's segments, 0600, one JSON object a line:
 *   {"v":1,"seq":12,"key":"shop:cart:7","px":60000,"time":1767225600000,
 *    "at":1767225601234,"reason":"rejected","detail":"ERR invalid expire time ...",
 *    "bytes":"<base64 of the stored envelope>"}
 *   seq     the log record the write came from
 *   px      its TTL in ms as enqueued (null = none); it counts from `time`
 *   time    when the write was enqueued (ms since the epoch)
 *   at      when it was given up on
 *   reason  'rejected'  Redis refused it for good (an invalid expire, WRONGTYPE, OOM
 *                       that persisted, NOPERM): every attempt failed with a reply error
 *           'namespace' a record of another namespace found when the log was replayed
 *   detail  the reason in words (Redis's reply; never the value)
 * The file is bounded (`maxBytes`, default 64 MiB): once full, further dead letters
 * are refused (dropped), counted and reported on the error event; the oldest, the
 * first evidence of the problem, are kept. `nearcache dead-letter show|replay` reads
 * it; replay rewrites it atomically without the records that landed.
 */
import { rename } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { CacheError, DeadLetterError } from '../errors.js'
import type { TierWrite } from '../tiers/tier.js'
import { createTemp, openAppend, openRead, syncDir } from './wal_files.js'

export const DEAD_LETTER_FILE = 'dead-letter.jsonl'
export const DEFAULT_MAX_DEAD_LETTER_BYTES = 64 * 1024 * 1024
/** The CLI reads the whole file; one larger than this is refused. */
export const MAX_DEAD_LETTER_READ = 1024 * 1024 * 1024

export type DeadLetterReason = 'rejected' | 'namespace'

export interface DeadLetter {
  seq: number
  key: string
  bytes: Buffer
  px: number | undefined
  time: number
  at: number
  reason: DeadLetterReason
  detail: string
}

/** A key as printed in messages and by the CLI: control, bidi and line-separator characters escaped as \uXXXX. */
export function printableKey(key: string): string {
  return key.replace(/[\\\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) =>
    c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/** A few keys for a message: `"a", "b" and 3 more`. */
export function someKeys(keys: readonly string[], n = 3): string {
  const shown = keys.slice(0, n).map((k) => `"${printableKey(k.length > 200 ? `${k.slice(0, 200)}…` : k)}"`)
  return keys.length > n ? `${shown.join(', ')} and ${keys.length - n} more` : shown.join(', ')
}

export function encodeDeadLetter(d: DeadLetter): string {
  return `${JSON.stringify({ v: 1, seq: d.seq, key: d.key, px: d.px ?? null, time: d.time, at: d.at, reason: d.reason, detail: d.detail, bytes: d.bytes.toString('base64') })}\n`
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** One line of the file as a dead letter, or why it is not one. Every field is checked (the file is input too). */
export function parseDeadLetter(line: string): DeadLetter | string {
  let o: unknown
  try {
    o = JSON.parse(line)
  } catch {
    return 'not JSON'
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not a JSON object'
  const r = o as Record<string, unknown>
  if (r.v !== 1) return `unknown version ${JSON.stringify(r.v)}`
  if (typeof r.key !== 'string' || r.key === '') return 'no key'
  if (typeof r.bytes !== 'string' || r.bytes.length % 4 !== 0 || !BASE64.test(r.bytes)) return 'bytes are not base64'
  if (r.px !== null && !(finite(r.px) && r.px > 0)) return 'px is not a positive number or null'
  if (!finite(r.time) || !finite(r.at) || !finite(r.seq)) return 'seq, time or at is not a number'
  if (r.reason !== 'rejected' && r.reason !== 'namespace') return `unknown reason ${JSON.stringify(r.reason)}`
  if (typeof r.detail !== 'string') return 'no detail'
  return { seq: r.seq, key: r.key, bytes: Buffer.from(r.bytes, 'base64'), px: r.px === null ? undefined : (r.px as number), time: r.time, at: r.at, reason: r.reason, detail: r.detail }
}

/** The dead letters in `dir` (none when there is no file), with the text of each line, and the lines that are not dead letters. */
export async function readDeadLetters(dir: string): Promise<{ file: string; letters: { letter: DeadLetter; line: string }[]; bad: { line: number; why: string }[] }> {
  const file = join(dir, DEAD_LETTER_FILE)
  let fh: FileHandle
  try {
    fh = await openRead(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { file, letters: [], bad: [] }
    throw err
  }
  let text: string
  try {
    const { size } = await fh.stat()
    if (size > MAX_DEAD_LETTER_READ) throw new CacheError('E_INVALID_OPTION', `${file} is ${size} bytes, over the ${MAX_DEAD_LETTER_READ} bytes this command reads; it was not written by nearcache's bounded dead-letter writer.`)
    text = await fh.readFile('utf8')
  } finally {
    await fh.close()
  }
  const letters: { letter: DeadLetter; line: string }[] = []
  const bad: { line: number; why: string }[] = []
  text.split('\n').forEach((line, i) => {
    if (line === '') return
    const d = parseDeadLetter(line)
    if (typeof d === 'string') bad.push({ line: i + 1, why: d })
    else letters.push({ letter: d, line })
  })
  return { file, letters, bad }
}

/** Replaces the file's content atomically (temp file, fsync, rename, directory fsync). */
export async function rewriteDeadLetters(dir: string, lines: readonly string[]): Promise<void> {
  const file = join(dir, DEAD_LETTER_FILE)
  const tmp = `${file}.tmp`
  const fh = await createTemp(tmp)
  try {
    await fh.writeFile(lines.map((l) => `${l}\n`).join(''))
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
  await syncDir(dir)
}

/** The append side, used by write-behind. */
export class DeadLetterFile {
  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    private readonly maxBytes: number,
    private readonly sync: boolean,
    /** Bytes in the file. */
    public size: number,
  ) {}

  static async open(dir: string, maxBytes: number, sync: boolean): Promise<DeadLetterFile> {
    const file = join(dir, DEAD_LETTER_FILE)
    const fh = await openAppend(file)
    try {
      const { size } = await fh.stat()
      return new DeadLetterFile(file, fh, maxBytes, sync, size)
    } catch (err) {
      await fh.close()
      throw err
    }
  }

  /** Appends what fits under the bound; answers how many were written (the rest were dropped). */
  async add(writes: readonly TierWrite[], meta: { seq: number; time: number; reason: DeadLetterReason; detail: string }[]): Promise<number> {
    const at = Date.now()
    const lines: string[] = []
    let size = this.size
    writes.forEach((w, i) => {
      const m = meta[i] as (typeof meta)[number]
      const line = encodeDeadLetter({ key: w.key, bytes: Buffer.from(w.bytes.buffer, w.bytes.byteOffset, w.bytes.length), px: w.px, at, ...m })
      const n = Buffer.byteLength(line)
      if (size + n > this.maxBytes) return
      lines.push(line)
      size += n
    })
    if (lines.length === 0) return 0
    await this.fh.writeFile(lines.join(''))
    if (this.sync) await this.fh.datasync()
    this.size = size
    return lines.length
  }

  close(): Promise<void> {
    return this.fh.close()
  }
}

/** Where giving up on writes is counted and told. */
export interface GiveUpContext {
  dead: DeadLetterFile
  /** The log's directory (for the CLI command the message names). */
  logDir: string
  /** Rounds of attempts made before a refused write is given up on. */
  maxAttempts: number
  /** Counters (of the write-behind's stats), updated here. */
  stats: { deadLetters: number; deadLettersDropped: number }
  /** Told of the writes given up on and the file's size; a throwing hook is ignored. */
  onDeadLetters: ((writes: TierWrite[], fileBytes: number) => void) | undefined
}

/**
 * Moves writes to the dead-letter file (what fits under its bound), counts them and
 * answers the error to report. Never throws: a dead-letter file that cannot be
 * written drops them, and the error says so.
 */
export async function giveUp(ctx: GiveUpContext, writes: TierWrite[], seq: number, time: number, reason: DeadLetterReason, detail: string, cause: unknown): Promise<DeadLetterError> {
  const dead = ctx.dead
  let kept = 0
  let writeError: unknown
  try {
    kept = await dead.add(writes, writes.map(() => ({ seq, time, reason, detail })))
  } catch (err) {
    writeError = err
  }
  const n = writes.length
  ctx.stats.deadLetters += n
  ctx.stats.deadLettersDropped += n - kept
  try {
    ctx.onDeadLetters?.(writes, dead.size)
  } catch {
    // A throwing hook must not stop the loop.
  }
  const file = dead.file
  const what =
    reason === 'namespace'
      ? `The write-ahead log held ${n} write${n === 1 ? '' : 's'} of keys outside this cache's namespace (${someKeys(writes.map((w) => w.key))}); they were not replayed`
      : `Redis refused ${n} write${n === 1 ? '' : 's'} for good after ${ctx.maxAttempts} attempts (${detail}; keys ${someKeys(writes.map((w) => w.key))}); write-behind gave up on ${n === 1 ? 'it' : 'them'}`
  const where =
    kept === n
      ? `, moved to the dead-letter file ${file}. Inspect with 'nearcache dead-letter show --dir ${ctx.logDir}'.`
      : writeError
        ? `, and the dead-letter file ${file} could not be written (${(writeError as Error).message}): ${n - kept} dropped.`
        : `; the dead-letter file ${file} is full (${dead.size} bytes, maxDeadLetterBytes): ${n - kept} dropped (${ctx.stats.deadLettersDropped} so far), ${kept} kept.`
  return new DeadLetterError(reason === 'namespace' ? 'E_CORRUPT_ENTRY' : 'E_L2_ERROR', what + where, writes.map((w) => w.key), file, kept, cause ?? writeError)
}
