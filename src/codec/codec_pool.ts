import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { compressSync } from 'lz4-napi'
import { Piscina } from 'piscina'
import { CodecError, InvalidOptionError } from '../errors.js'
import { deserialize, inflate, serialize } from './value_codec.js'
import type { EncodedValue } from './value_codec.js'
import type { CodecReply, CodecTask } from '../../workers/codec_worker.js'

export interface CodecPoolOptions {
  /** Worker threads. Default: `os.availableParallelism() - 1`, at least 1. */
  threads?: number
  /**
   * Size in bytes (msgpack bytes, before compression) from which a value's LZ4
   * work may go to a worker, for writes (compress) and reads (inflate) alike;
   * smaller values are done on the calling thread. Default: the crossovers
   * bench/codec_pool.ts measured, per direction ({@link MEASURED}).
   */
  threshold?: number
  /**
   * Move the thresholds at run time with the measured LZ4 cost per byte of the
   * values actually seen (see the class comment). Default true.
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
  /** Operations that failed with E_CODEC because the worker carrying them died. */
  workerFailures: number
  /** Operations handed to a worker and not answered yet. */
  inFlight: number
  adaptive: boolean
}

// ---- measured constants (bench/codec_pool.ts; 2 shared cores, Node 20) -------------

/**
 * Per direction: the crossover the benchmark measured (msgpack bytes from which
 * handing the LZ4 work to a worker costs the calling thread less than doing it)
 * and the inline LZ4 cost per byte it measured on the same data (µs/byte). Their
 * product is what a round trip costs the calling thread, which is what the
 * adaptive threshold is derived from.
 */
export const MEASURED = {
  compress: { threshold: 32 * 1024, microsPerByte: 0.0013 },
  inflate: { threshold: 256 * 1024, microsPerByte: 0.0004 },
} as const
/** Adaptive thresholds stay within [measured / 4, measured * 4]. */
const ADAPT_RANGE = 4
/** EWMA weight of a new per-byte cost sample. */
const ALPHA = 0.1
/** Work sharing: hand over while the queued worker work per thread is at most this many times the inline cost. */
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

/** A fresh ArrayBuffer holding exactly `b`: what can be transferred without detaching anyone else's memory. */
function ownedCopy(b: Uint8Array): Uint8Array {
  const copy = new Uint8Array(b.length)
  copy.set(b)
  return copy
}

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)

/**
 * Encodes and decodes cache values like `serialize` / `inflate` + `deserialize`
 * (src/codec/value_codec.ts), with the LZ4 work of large values done in piscina
 * worker threads.
 *
 * The rule: msgpackr always runs on the calling thread (a value handed to a thread
 * is structured-cloned, which costs about what packing it does, and a decoded value
 * cloned back costs more than unpacking it: measured, see bench/codec_pool.ts).
 * Once the msgpack size is known, a value that will be compressed (`raw.length >=
 * compressThreshold`) and is at least `threshold` bytes has its compression done by
 * a worker; a compressed payload whose inflated size (from its LZ4 header) is at
 * least `threshold` is inflated by a worker, then unpacked here. The bytes go over as
 * a transferred ArrayBuffer: one copy of the payload into a buffer of its own (the
 * msgpackr output shares msgpackr's scratch buffer, a Redis reply its socket chunk),
 * none in the message itself.
 *
 * Work sharing: while the workers' queued work (estimated) exceeds what this call
 * costs inline, the call is done inline, so a burst uses the calling thread as well.
 *
 * Adaptive: an EWMA of the measured LZ4 cost per byte (inline calls time themselves,
 * workers report theirs) per direction sets each threshold to the size at which that
 * work costs as much as a round trip costs the calling thread, within
 * [4 KiB, 4 MiB]. Without `adaptive`, both thresholds stay at `threshold`.
 *
 * Errors are those of the inline codec: `InvalidValueError`, `ValueTooLargeError`
 * from encode (thrown before anything is handed over); a corrupt payload rejects
 * decode with the decoder's own Error, as inline. A worker that dies fails only the
 * operations it carried, with `CodecError` (`E_CODEC`); piscina starts a new one.
 */
export class CodecPool {
  readonly #pool: Piscina<CodecTask, CodecReply>
  readonly #threads: number
  readonly #adaptive: boolean
  readonly #workSharing: boolean
  /** Current thresholds (bytes). */
  readonly #threshold: Record<Kind, number>
  /** What a round trip costs the calling thread, in µs, per direction: threshold × cost per byte at the start. */
  readonly #roundTripMicros: Record<Kind, number>
  /** EWMA of the LZ4 cost per byte (µs), per direction. */
  readonly #microsPerByte: Record<Kind, number> = { compress: MEASURED.compress.microsPerByte, inflate: MEASURED.inflate.microsPerByte }
  readonly #bounds: Record<Kind, [number, number]>
  readonly #counts = { encode: { inline: 0, offloaded: 0 }, decode: { inline: 0, offloaded: 0 } }
  #workerFailures = 0
  #inFlight = 0
  /** Estimated worker µs of the operations in flight. */
  #backlogMicros = 0
  #closed = false

  private constructor(pool: Piscina<CodecTask, CodecReply>, threads: number, threshold: number | undefined, adaptive: boolean, workSharing: boolean) {
    this.#pool = pool
    this.#threads = threads
    this.#adaptive = adaptive
    this.#workSharing = workSharing
    const start = (k: Kind) => threshold ?? MEASURED[k].threshold
    this.#threshold = { compress: start('compress'), inflate: start('inflate') }
    this.#roundTripMicros = { compress: start('compress') * MEASURED.compress.microsPerByte, inflate: start('inflate') * MEASURED.inflate.microsPerByte }
    const bounds = (k: Kind): [number, number] => [start(k) / ADAPT_RANGE, start(k) * ADAPT_RANGE]
    this.#bounds = { compress: bounds('compress'), inflate: bounds('inflate') }
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
    // A worker that cannot start (missing build, loader error) fails here, not on first use.
    try {
      await pool.run({ op: 'ping' })
    } catch (err) {
      await pool.destroy()
      throw new CodecError(`The codec worker (${filename}) did not start: ${err instanceof Error ? err.message : String(err)}`, err)
    }
    return new CodecPool(pool, threads, threshold, opts.adaptive ?? true, opts.workSharing ?? true)
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
      const t0 = performance.now()
      const packed = compressSync(raw as Buffer)
      this.#sample('compress', raw.length, (performance.now() - t0) * 1000)
      return Promise.resolve(packed.length < raw.length ? { raw, stored: packed, compressed: true } : enc)
    }
    this.#counts.encode.offloaded++
    const bytes = ownedCopy(raw)
    return this.#run('compress', raw.length, { op: 'compress', bytes }).then((reply) =>
      reply.bytes === null ? enc : { raw, stored: asBuffer(reply.bytes), compressed: true },
    )
  }

  /** Like `deserialize(inflate(payload, compressed))`, with large payloads inflated by a worker. */
  decode(payload: Uint8Array, compressed: boolean): Promise<unknown> {
    if (this.#closed) return Promise.reject(closedError())
    const size = compressed && payload.length >= 4 ? asBuffer(payload).readUInt32LE(0) : payload.length
    if (!compressed || !this.#offload('inflate', size)) {
      this.#counts.decode.inline++
      try {
        if (!compressed) return Promise.resolve(deserialize(payload))
        const t0 = performance.now()
        const raw = inflate(payload, true)
        this.#sample('inflate', raw.length, (performance.now() - t0) * 1000)
        return Promise.resolve(deserialize(raw))
      } catch (err) {
        return Promise.reject(err)
      }
    }
    this.#counts.decode.offloaded++
    return this.#run('inflate', size, { op: 'inflate', bytes: ownedCopy(payload) }).then((reply) => {
      if (reply.error !== null) throw new Error(reply.error)
      return deserialize(asBuffer(reply.bytes as Uint8Array))
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

  #offload(kind: Kind, bytes: number): boolean {
    if (bytes < this.#threshold[kind]) return false
    if (!this.#workSharing) return true
    const inlineMicros = bytes * this.#microsPerByte[kind]
    return this.#backlogMicros / this.#threads <= BACKLOG_FACTOR * inlineMicros
  }

  #run(kind: Kind, bytes: number, task: CodecTask): Promise<CodecReply> {
    const estimate = bytes * this.#microsPerByte[kind]
    this.#inFlight++
    this.#backlogMicros += estimate
    const transferList = 'bytes' in task ? [task.bytes.buffer as ArrayBuffer] : []
    return this.#pool.run(task, { transferList }).then(
      (reply) => {
        this.#inFlight--
        this.#backlogMicros -= estimate
        if (reply.micros > 0) this.#sample(kind, bytes, reply.micros)
        return reply
      },
      (err: unknown) => {
        this.#inFlight--
        this.#backlogMicros -= estimate
        this.#workerFailures++
        const why = err instanceof Error ? err.message : String(err)
        throw new CodecError(`The codec worker carrying this operation stopped (${why}); retry it: the pool has started a new worker.`, err)
      },
    )
  }

  #sample(kind: Kind, bytes: number, micros: number): void {
    if (bytes < 1024) return // timer resolution
    this.#microsPerByte[kind] += ALPHA * (micros / bytes - this.#microsPerByte[kind])
    if (this.#adaptive) this.#retune(kind)
  }

  /** The size at which this direction's LZ4 work costs what a round trip does, within the bounds. */
  #retune(kind: Kind): void {
    const [lo, hi] = this.#bounds[kind]
    this.#threshold[kind] = Math.min(hi, Math.max(lo, this.#roundTripMicros[kind] / this.#microsPerByte[kind]))
  }
}

function closedError(): CodecError {
  return new CodecError('The codec pool is closed; create a new one with CodecPool.create().')
}
