// How the codec pool (codec_pool.ts) reaches its workers: where the worker module
// is, and the reused ArrayBuffers that carry bytes to it.
import { fileURLToPath } from 'node:url'

/** Most bytes of transfer buffers kept for reuse. */
const RECYCLE_BYTES = 8 * 1024 * 1024

/**
 * Where the worker module is: next to this module's package root, as TypeScript
 * when running from source (tests, benchmarks: then the worker needs tsx) and as
 * JavaScript in the built package (dist/src/codec/ → dist/workers/).
 */
export function workerLocation(): { filename: string; execArgv: string[] | undefined } {
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
export class TransferBuffers {
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

/** A Buffer over the same bytes (no copy): what a worker's reply bytes become here. */
export const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength)
