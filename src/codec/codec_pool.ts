import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { compressSync } from 'lz4-napi'
import { Piscina } from 'piscina'
import { CodecError, InvalidOptionError } from '../errors.js'
import { checkDeclaredSize, checkDecodable, deserialize, inflate, lz4Claim, serialize } from './value_codec.js'
import type { EncodedValue } from './value_codec.js'
import type { CodecReply, CodecTask } from '../../workers/codec_worker.js'

export interface CodecPoolOptions {
  /** Worker threads. Default: `os.availableParallelism() - 1`, at least 1. */
  threads?: number
  /**
   * Size in bytes (msgpack bytes, before compression) from which a value's LZ4
   * work may go to a worker, for writes (compress) and reads (inflate) alike;
   * smaller values are done on the calling thread. Default: the crossovers
   * bench/codec_pool.ts measured, per direction ({@link MEASURED}: 64 KiB for
   * compress, 256 KiB for inflate). With `adaptive`, this is where the
   * thresholds start.
   */
  threshold?: number
  /**
   * Move the thresholds at run time (within 1/4x–4x of where they started) with
   * the LZ4 cost per byte measured on the values actually seen (see the class
   * comment). Default false: bench/codec_pool.ts measured no gain from it (the
   * shipped-defaults and adaptive rows were within noise of each other).
   */
  adaptive?: boolean
  /**
   * When the workers already hold more queued work than this call would cost on
   * the calling thread, do it on the calling thread instead of queueing it (so
   * both cores work). Default true; false offloads everything over the threshold.
   */
  workSharing?: boolean
}

export interface CodecPoolStats {
  threads: number
  /** Operations done on the calling thread / handed to a worker, encode and decode together. */
  inline: number
  offloaded: number
  encode: { inline: number; offloaded: number }
  decode: { inline: number; offloaded: number }
  /** Current thresholds in bytes (msgpack size): from these up, the LZ4 work may go to a worker. */
  threshold: { compress: number; inflate: number }
  /** Operations that failed with E_CODEC because the worker carrying them died, plus workers that died carrying nothing. */
  workerFailures: number
  /** Operations handed to a worker and not answered yet. */
  inFlight: number
  adaptive: boolean
}

// ---- measured constants (bench/codec_pool.ts; 2 shared cores, Node 20) -------------

/**
 * Per direction, from the benchmark's crossover sweep (bench/codec_pool.ts: calling
 * thread's CPU per call, LZ4 handed to a worker vs done inline, 2-vCPU VM):
 * - `threshold`, the default: compress from 64 KiB, where text started to cost the
 *   calling thread less (1.34x less at 64 KiB, ~2.2x from 256 KiB; 0.96 at 32 KiB);
 *   record arrays never gained more than ~10% at any size (LZ4 is ~15% of their
 *   encode; msgpackr is the rest and stays here). Inflate from 256 KiB, where both
 *   text (1.17x) and records (1.28x) gained; inflating is ~4x cheaper per byte than
 *   compressing, so a round trip pays only for much larger payloads.
 * - `microsPerByte`: LZ4's cost per msgpack byte on the data behind each default
 *   (text for compress, records for inflate), the adaptive model's reference.
 * - `overheadPerByte`: what a round trip costs the calling thread per byte (the
 *   copy into a transfer buffer, taking the reply). A round trip's fixed cost F
 *   breaks even at F / (p - overheadPerByte) bytes for data whose LZ4 costs p µs
 *   per byte; `adaptive` scales the start threshold by that ratio (approximate: fitted
 *   to two kinds of data on one machine).
 */
export const MEASURED = {
  compress: { threshold: 64 * 1024, microsPerByte: 0.002, overheadPerByte: 0.0002 },
  inflate: { threshold: 256 * 1024, microsPerByte: 0.0004, overheadPerByte: 0.0001 },
} as const
/** Adaptive thresholds stay within [start / 4, start * 4]. */
const ADAPT_RANGE = 4
/** EWMA weight of a new per-byte cost sample. */
const ALPHA = 0.1
/** Inline LZ4 calls are timed one in this many. */
const SAMPLE_EVERY = 8
/** Most bytes of transfer buffers kept for reuse. */
const RECYCLE_BYTES = 8 * 1024 * 1024
/** Work sharing: hand over while the workers' estimated backlog is at most this many times the inline cost of the call. */
const BACKLOG_FACTOR = 2

type Kind = 'compress' | 'inflate'

/**
 * Where the worker module is: next to this module's package root, as TypeScript
 * when running from source (tests, benchmarks: then the worker needs tsx) and as
 * JavaScript in the built package (dist/src/codec/ → dist/workers/).
 */
function workerLocation(): { filename: string; execArgv: string[] | undefined } {
  const fromSource = import.meta.url.endsWith('.ts')
  const url = new URL(`../../workers/codec_worker.${fromSource ? 'ts' : 'js'}`, import.meta.url)
  return { filename: fileURLToPath(url), execArgv: fromSource ? ['--import', 'tsx'] : undefined }
}

/**
 * ArrayBuffers for the bytes handed to workers, reused: a worker hands the buffer of
 * each task back with its reply. Allocating one per call cost the calling thread
 * more than the copy itself (zero-filling, page faults, and external-memory GCs:
 * ~30 µs per 128 KiB call in a CPU profile). Power-of-two size classes from 4 KiB;
 * at most RECYCLE_BYTES kept in all.
 */
class TransferBuffers {
  readonly #free = new Map<number, ArrayBuffer[]>()
  #kept = 0

  /** A view of `b.length` bytes, holding a copy of `b`, at the start of a buffer this pool owns. */
  copyOf(b: Uint8Array): Uint8Array {
    const size = Math.max(4096, 2 ** Math.ceil(Math.log2(Math.max(1, b.length))))
    const ab = this.#free.get(size)?.pop()
    if (ab) this.#kept -= ab.byteLength
    const view = new Uint8Array(ab ?? new ArrayBuffer(size), 0, b.length)
    view.set(b)
    return view
  }

  giveBack(ab: ArrayBuffer | null): void {
    if (ab === null || ab.byteLength === 0 || this.#kept + ab.byteLength > RECYCLE_BYTES) return
    let list = this.#free.get(ab.byteLength)
    if (!list) this.#free.set(ab.byteLength, (list = []))
    list.push(ab)
    this.#kept += ab.byteLength
  }
}

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)

/**
 * Encodes and decodes cache values exactly like `serialize` and `inflate` +
 * `deserialize` (src/codec/value_codec.ts: same bytes, same values, same errors),
 * with the LZ4 work of large values done in piscina worker threads.
 *
 * The rule (bench/codec_pool.ts measured the alternatives):
 * - msgpackr always runs on the calling thread. Handing a value to a thread is a
 *   structured clone that costs about what packing it does, and a decoded value
 *   cloned back costs more than unpacking it (2x for records). Packing in a worker
 *   did save the calling thread CPU (1.3x on 100 KiB records), but the worker, which
 *   then deserializes the clone, packs and compresses, became the bottleneck:
 *   throughput 0.5-0.9x inline. Objects do not know their size before they are
 *   packed; strings and Buffers do, but packing them is a copy, so they follow the
 *   same rule.
 * - Encode: once packed, a value that will be compressed (`raw.length >=
 *   compressThreshold`) and is at least the compress threshold has its LZ4
 *   compression done by a worker; otherwise inline, as `serialize` does.
 * - Decode: a compressed payload whose inflated size (from its LZ4 header) is at
 *   least the inflate threshold is inflated by a worker, then unpacked here.
 *   Inflating is ~4x cheaper per byte than compressing, so that threshold is higher.
 * - Bytes cross as transferred ArrayBuffers: one copy of the payload into a buffer of
 *   the pool's on the way out (msgpackr's output is a view into its reused scratch
 *   buffer, a Redis reply a view into a socket chunk: neither may be detached), none
 *   in the messages; the worker hands that buffer back with its reply for reuse, and
 *   its result arrives in a buffer it made for it.
 * - Work sharing (default): the pool keeps an estimate of when the workers will be
 *   through what they hold; when that backlog exceeds twice what this call costs
 *   inline, the call is done inline, so a burst keeps both the calling thread and the
 *   workers busy instead of queueing behind the workers. It kept throughput at or
 *   above inline (text, 100 KiB: 1.01-1.06x; 1 MiB: 1.19-1.25x vs 1.04-1.07x
 *   without), at the price of smaller savings of the calling thread's CPU
 *   (`workSharing: false` saves more: ~1.4x vs ~1.08x at 100 KiB).
 * - Adaptive (opt-in, `adaptive: true`): an EWMA of the LZ4 cost per byte measured
 *   on this thread's inline calls (per direction) moves each threshold to the
 *   break-even size of a round trip (`MEASURED`): data that compresses more slowly
 *   per byte than the data the defaults were measured on is handed over from a
 *   smaller size, data that compresses faster from a larger one. Bounded to
 *   [start / 4, start * 4]. Off by default: the benchmark showed no gain from it
 *   over the fixed defaults.
 *
 * Measured (bench/results/codec_pool.json), 100 KiB set+get codec work, pool /
 * inline: records 0.72-0.92x, text 1.06x (the 1.3x goal is not met: for
 * records LZ4 is too small a share of the work, for text the round trips and, on the
 * 2-vCPU VM, the two threads often sharing one vCPU eat the gain); 1 MiB text 1.25x;
 * under 1 KiB 0.96-1.00x (inline, one extra await). lz4-napi's async API (libuv's
 * threadpool, no worker thread) did better on large text (1.33x at 100 KiB).
 *
 * Errors: `InvalidValueError` and `ValueTooLargeError` from encode, raised on this
 * thread before anything is handed over; a corrupt payload rejects decode with the
 * decoder's own Error, inline or not (callers turn it into `E_CORRUPT_ENTRY` as
 * before). A worker that dies fails only the operations it carried, with
 * `CodecError` (`E_CODEC`); piscina starts a new worker and the next calls use it.
 */
export class CodecPool {
  readonly #pool: Piscina<CodecTask, CodecReply>
  readonly #threads: number
  readonly #adaptive: boolean
  readonly #workSharing: boolean
  /** Where each threshold started (the measured default, or the `threshold` option). */
  readonly #start: Record<Kind, number>
  /** Current thresholds (bytes). */
  readonly #threshold: Record<Kind, number>
  /** EWMA of the LZ4 cost per byte (µs) on this thread, from calls done inline. */
  readonly #inlinePerByte: Record<Kind, number> = { compress: MEASURED.compress.microsPerByte, inflate: MEASURED.inflate.microsPerByte }
  /** EWMA of the LZ4 cost per byte (µs) in the workers, as they report it: predicts the backlog. */
  readonly #workerPerByte: Record<Kind, number> = { compress: MEASURED.compress.microsPerByte, inflate: MEASURED.inflate.microsPerByte }
  readonly #counts = { encode: { inline: 0, offloaded: 0 }, decode: { inline: 0, offloaded: 0 } }
  #workerFailures = 0
  #inFlight = 0
  /** performance.now() at which the workers should be through what they were handed. */
  #freeAt = 0
  readonly #ticks: Record<Kind, number> = { compress: 0, inflate: 0 }
  #closed = false
  readonly #buffers = new TransferBuffers()

  private constructor(pool: Piscina<CodecTask, CodecReply>, threads: number, threshold: number | undefined, adaptive: boolean, workSharing: boolean) {
    this.#pool = pool
    this.#threads = threads
    this.#adaptive = adaptive
    this.#workSharing = workSharing
    this.#start = { compress: threshold ?? MEASURED.compress.threshold, inflate: threshold ?? MEASURED.inflate.threshold }
    this.#threshold = { ...this.#start }
    // A worker that dies while carrying nothing fails no operation; piscina reports it as
    // an 'error' event, which without a listener would throw in this thread.
    pool.on('error', () => {
      this.#workerFailures++
    })
  }

  static async create(opts: CodecPoolOptions = {}): Promise<CodecPool> {
    const threads = opts.threads ?? Math.max(1, os.availableParallelism() - 1)
    if (!Number.isInteger(threads) || threads < 1) throw new InvalidOptionError(`threads must be a positive integer (got ${String(opts.threads)}).`)
    const threshold = opts.threshold
    if (threshold !== undefined && !(threshold >= 0)) throw new InvalidOptionError(`threshold must be a number of bytes >= 0 (got ${String(threshold)}).`)
    const { filename, execArgv } = workerLocation()
    const pool = new Piscina<CodecTask, CodecReply>({
      filename,
      ...(execArgv ? { execArgv } : {}),
      minThreads: threads,
      maxThreads: threads,
      // A few tasks queued in each worker, so it does not idle while this thread is busy.
      concurrentTasksPerWorker: 4,
      idleTimeout: Infinity,
      recordTiming: false,
    })
    const codec = new CodecPool(pool, threads, threshold, opts.adaptive ?? false, opts.workSharing ?? true)
    // A worker that cannot start (missing build, loader error) fails here, not on first use.
    try {
      await pool.run({ op: 'ping' })
    } catch (err) {
      await pool.destroy()
      throw new CodecError(`The codec worker (${filename}) did not start: ${err instanceof Error ? err.message : String(err)}`, err)
    }
    return codec
  }

  /** Like `serialize(value, maxValueBytes, compressThreshold)`, with large values compressed by a worker. */
  encode(value: unknown, maxValueBytes: number, compressThreshold: number): Promise<EncodedValue> {
    if (this.#closed) return Promise.reject(closedError())
    let enc: EncodedValue
    try {
      enc = serialize(value, maxValueBytes, Infinity) // msgpack only; typed errors thrown here
    } catch (err) {
      return Promise.reject(err)
    }
    const raw = enc.raw
    if (raw.length < compressThreshold) {
      this.#counts.encode.inline++
      return Promise.resolve(enc)
    }
    if (!this.#offload('compress', raw.length)) {
      this.#counts.encode.inline++
      const timed = this.#timeThis('compress')
      const t0 = timed ? performance.now() : 0
      const packed = compressSync(raw as Buffer)
      if (timed) this.#sample('compress', raw.length, (performance.now() - t0) * 1000)
      return Promise.resolve(packed.length < raw.length ? { raw, stored: packed, compressed: true } : enc)
    }
    this.#counts.encode.offloaded++
    return this.#run('compress', raw.length, { op: 'compress', bytes: this.#buffers.copyOf(raw) }).then((reply) =>
      reply.bytes === null ? enc : { raw, stored: asBuffer(reply.bytes), compressed: true },
    )
  }

  /**
   * Like `checkDecodable(inflate(payload, compressed, maxValueBytes))` then
   * `deserialize`, with large payloads inflated by a worker. The declared size is
   * checked here before anything is handed over or allocated; the worker checks
   * what it inflated; the msgpack limits are checked here before unpacking.
   */
  decode(payload: Uint8Array, compressed: boolean, maxValueBytes: number): Promise<unknown> {
    if (this.#closed) return Promise.reject(closedError())
    try {
      checkDeclaredSize(payload, compressed, maxValueBytes)
    } catch (err) {
      return Promise.reject(err)
    }
    // LZ4 block payloads start with the inflated size (u32 LE): the work to expect.
    const size = compressed ? lz4Claim(payload) : payload.length
    if (!compressed || !this.#offload('inflate', size)) {
      this.#counts.decode.inline++
      try {
        if (!compressed) {
          checkDecodable(payload, maxValueBytes)
          return Promise.resolve(deserialize(payload))
        }
        const timed = this.#timeThis('inflate')
        const t0 = timed ? performance.now() : 0
        const raw = inflate(payload, true, maxValueBytes)
        if (timed) this.#sample('inflate', raw.length, (performance.now() - t0) * 1000)
        checkDecodable(raw, maxValueBytes)
        return Promise.resolve(deserialize(raw))
      } catch (err) {
        return Promise.reject(err)
      }
    }
    this.#counts.decode.offloaded++
    return this.#run('inflate', size, { op: 'inflate', bytes: this.#buffers.copyOf(payload), maxValueBytes }).then((reply) => {
      if (reply.error !== null) throw new Error(reply.error)
      const raw = asBuffer(reply.bytes as Uint8Array)
      checkDecodable(raw, maxValueBytes)
      return deserialize(raw)
    })
  }

  stats(): CodecPoolStats {
    const { encode, decode } = this.#counts
    return {
      threads: this.#threads,
      inline: encode.inline + decode.inline,
      offloaded: encode.offloaded + decode.offloaded,
      encode: { ...encode },
      decode: { ...decode },
      threshold: { compress: Math.round(this.#threshold.compress), inflate: Math.round(this.#threshold.inflate) },
      workerFailures: this.#workerFailures,
      inFlight: this.#inFlight,
      adaptive: this.#adaptive,
    }
  }

  /** Lets the operations in flight finish, then stops the workers. Later calls reject with E_CODEC. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#pool.close()
  }

  /** @internal Test hook: makes a worker die ('exit': process.exit; 'throw': an exception outside any task). */
  crashWorkerForTest(how: 'exit' | 'throw'): Promise<unknown> {
    return this.#run('compress', 0, { op: 'crash', how })
  }

  /** One inline LZ4 call in SAMPLE_EVERY is timed for the cost model (timing every call cost small values ~2%). */
  #timeThis(kind: Kind): boolean {
    return (this.#ticks[kind] = (this.#ticks[kind] + 1) % SAMPLE_EVERY) === 0
  }

  #offload(kind: Kind, bytes: number): boolean {
    if (bytes < this.#threshold[kind]) return false
    if (!this.#workSharing || this.#inFlight === 0) return true
    const backlogMicros = (this.#freeAt - performance.now()) * 1000
    return backlogMicros <= BACKLOG_FACTOR * bytes * this.#inlinePerByte[kind]
  }

  #run(kind: Kind, bytes: number, task: CodecTask): Promise<CodecReply> {
    this.#inFlight++
    this.#freeAt = Math.max(this.#freeAt, performance.now()) + (bytes * this.#workerPerByte[kind]) / 1000 / this.#threads
    const transferList = 'bytes' in task ? [task.bytes.buffer as ArrayBuffer] : []
    return this.#pool.run(task, { transferList }).then(
      (reply) => {
        // Nothing left in flight: the workers are idle, whatever the estimate said.
        if (--this.#inFlight === 0) this.#freeAt = 0
        this.#buffers.giveBack(reply.input)
        if (bytes >= 1024 && reply.error === null) this.#workerPerByte[kind] += ALPHA * (reply.micros / bytes - this.#workerPerByte[kind])
        return reply
      },
      (err: unknown) => {
        if (--this.#inFlight === 0) this.#freeAt = 0
        this.#workerFailures++
        const why = err instanceof Error ? err.message : String(err)
        throw new CodecError(`The codec worker carrying this operation stopped (${why}); retry it: the pool has started a new worker.`, err)
      },
    )
  }

  /** One inline LZ4 timing: updates the cost per byte and, when adaptive, the threshold. */
  #sample(kind: Kind, bytes: number, micros: number): void {
    if (bytes < 1024) return // below the timer's resolution
    this.#inlinePerByte[kind] += ALPHA * (micros / bytes - this.#inlinePerByte[kind])
    if (!this.#adaptive) return
    // Break-even size for the current cost per byte, relative to the one for the data the
    // default was measured on; the threshold moves by that factor from where it started.
    const { microsPerByte, overheadPerByte } = MEASURED[kind]
    const p = this.#inlinePerByte[kind]
    const factor = p > overheadPerByte ? (microsPerByte - overheadPerByte) / (p - overheadPerByte) : Infinity
    const start = this.#start[kind]
    this.#threshold[kind] = Math.min(start * ADAPT_RANGE, Math.max(start / ADAPT_RANGE, start * factor))
  }
}

function closedError(): CodecError {
  return new CodecError('The codec pool is closed; create a new one with CodecPool.create().')
}
