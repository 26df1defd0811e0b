// The codec pool's cost model: from which size a value's LZ4 work goes to a worker
// (the thresholds, fixed or adaptive), and whether the workers are too far behind to
// take it now (work sharing). The pool (codec_pool.ts) asks and reports; this file
// does no I/O and holds no worker.

/** The two directions of LZ4 work: compress on encode, inflate on decode. */
export type Kind = 'compress' | 'inflate'

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
/** Work sharing: hand over while the workers' estimated backlog is at most this many times the inline cost of the call. */
const BACKLOG_FACTOR = 2
/** Calls smaller than this update no cost per byte: below the timer's resolution. */
const MIN_SAMPLE_BYTES = 1024

export interface CostModelOptions {
  /** Worker threads sharing the backlog. */
  threads: number
  /** Where both thresholds start; default: {@link MEASURED}, per direction. */
  threshold: number | undefined
  adaptive: boolean
  workSharing: boolean
}

/**
 * Decides, per call, whether a value's LZ4 work goes to a worker, and learns from
 * what it is told. The pool calls, in order: `shouldOffload`; then either `began` ...
 * `ended` around a worker's task, or (inline) `timeThis` and, when it answers true,
 * `sampleInline` with the time the call took.
 *
 * - Thresholds: from `threshold` bytes (msgpack size, per direction) up, the work
 *   may go to a worker; below, it is done inline.
 * - Work sharing (default): the model keeps an estimate of when the workers will be
 *   through what they hold (`#freeAt`, from the workers' own reported cost per byte,
 *   divided among the threads); when that backlog exceeds twice what this call costs
 *   inline, the call is done inline, so a burst keeps both the calling thread and the
 *   workers busy instead of queueing behind the workers. It kept throughput at or
 *   above inline (text, 100 KiB: 1.01-1.06x; 1 MiB: 1.19-1.25x vs 1.04-1.07x
 *   without), at the price of smaller savings of the calling thread's CPU
 *   (`workSharing: false` saves more: ~1.4x vs ~1.08x at 100 KiB). With nothing in
 *   flight the workers are idle, whatever the estimate said.
 * - Adaptive (opt-in, `adaptive: true`): an EWMA of the LZ4 cost per byte measured
 *   on this thread's inline calls (per direction; one call in SAMPLE_EVERY is timed:
 *   timing every call cost small values ~2%) moves each threshold to the break-even
 *   size of a round trip (`MEASURED`): data that compresses more slowly per byte than
 *   the data the defaults were measured on is handed over from a smaller size, data
 *   that compresses faster from a larger one. Bounded to [start / 4, start * 4]. Off
 *   by default: the benchmark showed no gain from it over the fixed defaults.
 *
 * The clock is `performance.now()`, read in `shouldOffload` (only when work sharing
 * has something in flight to weigh) and in `began`.
 */
export class CostModel {
  readonly #threads: number
  readonly adaptive: boolean
  readonly #workSharing: boolean
  /** Where each threshold started (the measured default, or the `threshold` option). */
  readonly #start: Record<Kind, number>
  /** Current thresholds (bytes). */
  readonly #threshold: Record<Kind, number>
  /** EWMA of the LZ4 cost per byte (µs) on this thread, from calls done inline. */
  readonly #inlinePerByte: Record<Kind, number> = { compress: MEASURED.compress.microsPerByte, inflate: MEASURED.inflate.microsPerByte }
  /** EWMA of the LZ4 cost per byte (µs) in the workers, as they report it: predicts the backlog. */
  readonly #workerPerByte: Record<Kind, number> = { compress: MEASURED.compress.microsPerByte, inflate: MEASURED.inflate.microsPerByte }
  #inFlight = 0
  /** performance.now() at which the workers should be through what they were handed. */
  #freeAt = 0
  readonly #ticks: Record<Kind, number> = { compress: 0, inflate: 0 }

  constructor(opts: CostModelOptions) {
    this.#threads = opts.threads
    this.adaptive = opts.adaptive
    this.#workSharing = opts.workSharing
    this.#start = { compress: opts.threshold ?? MEASURED.compress.threshold, inflate: opts.threshold ?? MEASURED.inflate.threshold }
    this.#threshold = { ...this.#start }
  }

  /** Operations handed to a worker and not ended yet. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** The current threshold of `kind`, in bytes (not rounded: adaptive ones move by factors). */
  threshold(kind: Kind): number {
    return this.#threshold[kind]
  }

  /** Whether `bytes` (msgpack size) of `kind` work should go to a worker now. */
  shouldOffload(kind: Kind, bytes: number): boolean {
    if (bytes < this.#threshold[kind]) return false
    if (!this.#workSharing || this.#inFlight === 0) return true
    const backlogMicros = (this.#freeAt - performance.now()) * 1000
    return backlogMicros <= BACKLOG_FACTOR * bytes * this.#inlinePerByte[kind]
  }

  /** A task of `bytes` of `kind` work was handed to a worker: the backlog grows by its expected cost. */
  began(kind: Kind, bytes: number): void {
    this.#inFlight++
    this.#freeAt = Math.max(this.#freeAt, performance.now()) + (bytes * this.#workerPerByte[kind]) / 1000 / this.#threads
  }

  /**
   * A task `began` with the same `kind` and `bytes` was answered or failed.
   * `workerMicros`: the LZ4 time the worker reported, when it answered without error.
   */
  ended(kind: Kind, bytes: number, workerMicros?: number): void {
    // Nothing left in flight: the workers are idle, whatever the estimate said.
    if (--this.#inFlight === 0) this.#freeAt = 0
    if (workerMicros !== undefined && bytes >= MIN_SAMPLE_BYTES) this.#workerPerByte[kind] += ALPHA * (workerMicros / bytes - this.#workerPerByte[kind])
  }

  /** Whether to time this inline call of `kind` (one in SAMPLE_EVERY: timing every call cost small values ~2%). */
  timeThis(kind: Kind): boolean {
    return (this.#ticks[kind] = (this.#ticks[kind] + 1) % SAMPLE_EVERY) === 0
  }

  /** One inline LZ4 timing: updates the cost per byte and, when adaptive, the threshold. */
  sampleInline(kind: Kind, bytes: number, micros: number): void {
    if (bytes < MIN_SAMPLE_BYTES) return
    this.#inlinePerByte[kind] += ALPHA * (micros / bytes - this.#inlinePerByte[kind])
    if (!this.adaptive) return
    // Break-even size for the current cost per byte, relative to the one for the data the
    // default was measured on; the threshold moves by that factor from where it started.
    const { microsPerByte, overheadPerByte } = MEASURED[kind]
    const p = this.#inlinePerByte[kind]
    const factor = p > overheadPerByte ? (microsPerByte - overheadPerByte) / (p - overheadPerByte) : Infinity
    const start = this.#start[kind]
    this.#threshold[kind] = Math.min(start * ADAPT_RANGE, Math.max(start / ADAPT_RANGE, start * factor))
  }
}
